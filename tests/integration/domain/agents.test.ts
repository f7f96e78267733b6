import { ZodError } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent, getAgent, listAgents, setAgentSuspended } from "@/lib/agents/agents";
import type { Actor } from "@/lib/auth/actor";
import { AppError } from "@/lib/errors/app-error";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

describe("agents through the real database", () => {
  let t: TestDatabase;
  let admin: Actor;
  let auditor: Actor;
  let approver: Actor;
  let adminEmail: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    adminEmail = a.email;
    auditor = (await makeUser(t.db, "auditor")).actor;
    approver = (await makeUser(t.db, "approver")).actor;
  });
  afterAll(() => t.drop());

  it("registers an agent owned by the acting admin and records an audit event", async () => {
    const name = unique("deploy-bot");
    const agent = await createAgent(t.db, admin, { name, description: "Deploys staging" });
    expect(agent).toMatchObject({ name, description: "Deploys staging", status: "active", owner: { email: adminEmail } });
    const event = await t.db.auditEvent.findFirst({ where: { type: "agent.created", agentId: agent.id } });
    expect(event).toMatchObject({ actorType: "user", actorId: (admin as { userId: string }).userId });
  });

  it("assigns another owner by email, and rejects an unknown owner", async () => {
    const owner = await makeUser(t.db, "approver");
    const agent = await createAgent(t.db, admin, { name: unique("owned"), ownerEmail: owner.email.toUpperCase() });
    expect(agent.owner.email).toBe(owner.email);
    await expect(createAgent(t.db, admin, { name: unique("x"), ownerEmail: "nobody@example.test" })).rejects.toThrow(
      /No active user with email nobody@example.test/,
    );
    // With a bad name as well, both are said at once.
    const both = await createAgent(t.db, admin, { name: "bad name!", ownerEmail: "nobody@example.test" }).catch((e: unknown) => e);
    expect(both).toBeInstanceOf(ZodError);
    expect((both as ZodError).issues.map((i) => i.path[0])).toEqual(["name", "ownerEmail"]);
    expect((both as ZodError).issues[1]?.message).toMatch(/No active user with email nobody@example.test/);
    // An owner who exists adds nothing to a bad name's refusal.
    const nameOnly = await createAgent(t.db, admin, { name: "bad name!", ownerEmail: owner.email }).catch((e: unknown) => e);
    expect((nameOnly as ZodError).issues.map((i) => i.path[0])).toEqual(["name"]);
  });

  it("refuses duplicate names with a conflict, and loses nothing", async () => {
    const name = unique("dup");
    const first = await createAgent(t.db, admin, { name });
    const error = await createAgent(t.db, admin, { name }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("CONFLICT");
    expect(await getAgent(t.db, admin, first.id)).toMatchObject({ name });
  });

  it("refuses a name that differs from an agent's only in case, also when both are created at once", async () => {
    const name = unique("Look-Alike");
    await createAgent(t.db, admin, { name });
    for (const other of [name.toLowerCase(), name.toUpperCase()]) {
      const refused = await createAgent(t.db, admin, { name: other }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(AppError);
      expect(refused).toMatchObject({ code: "CONFLICT", details: { fieldErrors: { name: [`An agent named ${name} already exists (names that differ only in case are one name).`] } } });
    }
    // Two at the same moment: exactly one is registered.
    const race = unique("race-bot");
    const results = await Promise.allSettled([race, race.toUpperCase(), `R${race.slice(1)}`].map((n) => createAgent(t.db, admin, { name: n })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason)).toEqual([
      expect.objectContaining({ code: "CONFLICT" }),
      expect.objectContaining({ code: "CONFLICT" }),
    ]);
    expect(await t.db.agent.count({ where: { name: { in: [name.toLowerCase(), name.toUpperCase(), race, race.toUpperCase(), `R${race.slice(1)}`] } } })).toBe(1);
  });

  it("validates input with clear messages", async () => {
    await expect(createAgent(t.db, admin, { name: "" })).rejects.toThrow(/at least 2 characters/);
    await expect(createAgent(t.db, admin, { name: "<script>" })).rejects.toThrow(/Use letters, digits/);
  });

  it("lists and searches by name, description and owner", async () => {
    const tag = unique("searchable");
    await createAgent(t.db, admin, { name: `${tag}-one`, description: "first" });
    await createAgent(t.db, admin, { name: unique("other"), description: `mentions ${tag}` });
    const found = await listAgents(t.db, auditor, { query: tag.toUpperCase() });
    expect(found).toHaveLength(2);
    const byOwner = await listAgents(t.db, auditor, { query: adminEmail });
    expect(byOwner.length).toBeGreaterThanOrEqual(2);
  });

  it("suspends (revoking active tasks) and reactivates", async () => {
    const agent = await createAgent(t.db, admin, { name: unique("susp") });
    const task = await t.db.task.create({
      data: { agentId: agent.id, purpose: "p", policyYaml: "rules: []", expiresAt: new Date(Date.now() + 60_000) },
    });
    const suspended = await setAgentSuspended(t.db, admin, agent.id, true);
    expect(suspended.status).toBe("suspended");
    expect(suspended.suspendedAt).toBeInstanceOf(Date);
    expect((await t.db.task.findUniqueOrThrow({ where: { id: task.id } })).status).toBe("revoked");
    const again = await setAgentSuspended(t.db, admin, agent.id, false);
    expect(again.status).toBe("active");
    expect((await t.db.task.findUniqueOrThrow({ where: { id: task.id } })).status).toBe("revoked");
    const types = (await t.db.auditEvent.findMany({ where: { agentId: agent.id }, orderBy: { id: "asc" } })).map((e) => e.type);
    expect(types).toEqual(["agent.created", "agent.suspended", "agent.reactivated"]);
  });

  it("lets auditors and approvers read but never change", async () => {
    const agent = await createAgent(t.db, admin, { name: unique("ro") });
    for (const reader of [auditor, approver]) {
      expect((await getAgent(t.db, reader, agent.id)).id).toBe(agent.id);
      await expect(createAgent(t.db, reader, { name: unique("nope") })).rejects.toMatchObject({ code: "FORBIDDEN" });
      await expect(setAgentSuspended(t.db, reader, agent.id, true)).rejects.toMatchObject({ code: "FORBIDDEN" });
    }
    expect((await getAgent(t.db, admin, agent.id)).status).toBe("active");
  });

  it("treats malformed and unknown ids as not found", async () => {
    await expect(getAgent(t.db, admin, "'; DROP TABLE agents; --")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(getAgent(t.db, admin, "00000000-0000-4000-8000-000000000000")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(setAgentSuspended(t.db, admin, "../../etc", true)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
