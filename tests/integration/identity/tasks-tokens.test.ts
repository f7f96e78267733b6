import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { setAgentSuspended } from "@/lib/agents/agents";
import { generateMasterKey, parseMasterKey } from "@/lib/crypto/envelope";
import { listSigningKeys, rotateKeys } from "@/lib/identity/key-store";
import { assertMasterKeyMatchesData } from "@/lib/identity/master-key";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { issueTaskToken, revokeTaskToken, verifyTaskTokenNow } from "@/lib/identity/task-tokens";
import { createTask, endTask, getTask } from "@/lib/tasks/tasks";
import { setMaxTaskTtlSeconds } from "@/lib/tasks/settings";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { establishTestKeys } from "../../support/keys";

const identity = { issuer: "bulkhead", audience: "bulkhead-proxy" };

describe("tasks and task tokens through the real database", () => {
  let t: TestDatabase;
  let admin: Actor;
  let auditor: Actor;
  let ownerId: string;
  /** Task tokens are signed with keys only the dashboard key (and the CLI) opens. */
  let dashboardKey: Buffer;

  const newAgent = async () => (await t.db.agent.create({ data: { name: unique("agent"), ownerId } })).id;

  beforeAll(async () => {
    t = await createTestDatabase();
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    ownerId = a.user.id;
    auditor = (await makeUser(t.db, "auditor")).actor;
    dashboardKey = (await establishTestKeys(t.db)).dashboardKey;
  });
  afterAll(() => t.drop());

  it("creates a task with the default 15 minute TTL and a deny-all policy", async () => {
    const agentId = await newAgent();
    const now = new Date();
    const task = await createTask(t.db, admin, { agentId, purpose: "check staging credentials" }, now);
    expect(task.status).toBe("active");
    expect(task.expiresAt.getTime() - now.getTime()).toBe(15 * 60 * 1000);
    expect(task.policyYaml).toContain("unlisted: deny");
  });

  it("enforces the admin-configured maximum TTL and validates the policy with located errors", async () => {
    const agentId = await newAgent();
    await setMaxTaskTtlSeconds(t.db, admin, 3600);
    await expect(createTask(t.db, admin, { agentId, purpose: "too long", ttl: "2h" })).rejects.toThrow(/between 1m and 1h/);
    await expect(createTask(t.db, admin, { agentId, purpose: "bad ttl", ttl: "soon" })).rejects.toThrow(/time to live/);
    const bad = await createTask(t.db, admin, { agentId, purpose: "bad policy", policyYaml: "rules:\n  - service: railway\n    effects: [explode]\n" }).catch((e: unknown) => e);
    expect((bad as { details: { fieldErrors: { policyYaml: string[] } } }).details.fieldErrors.policyYaml.join(" ")).toMatch(/rules\[0\]\.effects\[0\]/);
    await setMaxTaskTtlSeconds(t.db, admin, 8 * 3600);
  });

  it("refuses tasks for suspended agents and lets only admins create or end tasks", async () => {
    const agentId = await newAgent();
    await setAgentSuspended(t.db, admin, agentId, true);
    await expect(createTask(t.db, admin, { agentId, purpose: "should fail" })).rejects.toThrow(/suspended/);
    const other = await newAgent();
    await expect(createTask(t.db, auditor, { agentId: other, purpose: "nope" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    const task = await createTask(t.db, admin, { agentId: other, purpose: "allowed" });
    await expect(endTask(t.db, auditor, task.id)).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(issueTaskToken(t.db, auditor, dashboardKey, identity, task.id)).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("ending a task whose time already ran out (before the expiry sweep) records its expiry, not an ending", async () => {
    const task = await createTask(t.db, admin, { agentId: await newAgent(), purpose: "ran out" });
    await t.db.task.update({ where: { id: task.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const view = await endTask(t.db, admin, task.id);
    expect(view.status).toBe("expired");
    const row = await t.db.task.findUniqueOrThrow({ where: { id: task.id } });
    expect(row).toMatchObject({ status: "expired", endedReason: "time to live reached" });
    const types = (await t.db.auditEvent.findMany({ where: { taskId: task.id, type: { startsWith: "task." } } })).map((e) => e.type);
    expect(types).toContain("task.expired");
    expect(types).not.toContain("task.ended");
    // A live task is ended as before.
    const live = await createTask(t.db, admin, { agentId: await newAgent(), purpose: "still running" });
    expect((await endTask(t.db, admin, live.id)).status).toBe("ended");
  });

  it("mints a token that verifies, records it by jti (never the token), and never outlives the task", async () => {
    const agentId = await newAgent();
    const task = await createTask(t.db, admin, { agentId, purpose: "short", ttl: "2m" });
    const issued = await issueTaskToken(t.db, admin, dashboardKey, identity, task.id);
    expect(issued.expiresAt.getTime()).toBeLessThanOrEqual(task.expiresAt.getTime());
    const verified = await verifyTaskTokenNow(t.db, identity, issued.token);
    expect(verified).toMatchObject({ agentId, taskId: task.id, jti: issued.jti });
    const row = await t.db.issuedToken.findUniqueOrThrow({ where: { jti: issued.jti } });
    expect(row.kid).toBe(issued.kid);
    const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
    const everything = json(await t.db.auditEvent.findMany()) + json(await t.db.issuedToken.findMany());
    expect(everything).not.toContain(issued.token.split(".")[2]);
  });

  it("rejects tokens of an ended task, a suspended agent and a revoked jti, each with its reason", async () => {
    const a1 = await newAgent();
    const ended = await createTask(t.db, admin, { agentId: a1, purpose: "ends" });
    const t1 = await issueTaskToken(t.db, admin, dashboardKey, identity, ended.id);
    await endTask(t.db, admin, ended.id);
    expect((await getTask(t.db, admin, ended.id)).status).toBe("ended");
    await expect(verifyTaskTokenNow(t.db, identity, t1.token)).rejects.toMatchObject({ reason: "task_revoked" });
    await expect(issueTaskToken(t.db, admin, dashboardKey, identity, ended.id)).rejects.toThrow(/no longer active/);

    const a2 = await newAgent();
    const task2 = await createTask(t.db, admin, { agentId: a2, purpose: "suspend" });
    const t2 = await issueTaskToken(t.db, admin, dashboardKey, identity, task2.id);
    await t.db.agent.update({ where: { id: a2 }, data: { status: "suspended" } }); // bypasses task revocation on purpose
    await expect(verifyTaskTokenNow(t.db, identity, t2.token)).rejects.toMatchObject({ reason: "agent_suspended" });

    const a3 = await newAgent();
    const task3 = await createTask(t.db, admin, { agentId: a3, purpose: "jti" });
    const t3 = await issueTaskToken(t.db, admin, dashboardKey, identity, task3.id);
    const t3b = await issueTaskToken(t.db, admin, dashboardKey, identity, task3.id);
    // Named with another task (the dashboard's button sends the page's task): no such token, nothing revoked.
    await expect(revokeTaskToken(t.db, admin, t3.jti, new Date(), { taskId: task2.id })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(verifyTaskTokenNow(t.db, identity, t3.token)).resolves.toMatchObject({ jti: t3.jti });
    await revokeTaskToken(t.db, admin, t3.jti, new Date(), { taskId: task3.id });
    await expect(verifyTaskTokenNow(t.db, identity, t3.token)).rejects.toMatchObject({ reason: "jti_revoked" });
    await expect(verifyTaskTokenNow(t.db, identity, t3b.token)).resolves.toMatchObject({ jti: t3b.jti });
  });

  it("rotation: the new key signs at once, old tokens verify until expiry, then the old key retires", async () => {
    const agentId = await newAgent();
    const task = await createTask(t.db, admin, { agentId, purpose: "rotation" });
    const before = await issueTaskToken(t.db, admin, dashboardKey, identity, task.id);
    const change = await rotateKeys(t.db, admin, dashboardKey, { maxTokenTtlSeconds: 3600 });
    const after = await issueTaskToken(t.db, admin, dashboardKey, identity, task.id);
    expect(after.kid).toBe(change.added.kid);
    expect(after.kid).not.toBe(before.kid);
    await expect(verifyTaskTokenNow(t.db, identity, before.token)).resolves.toMatchObject({ kid: before.kid });
    const keys = await listSigningKeys(t.db, admin);
    expect(keys.find((k) => k.kid === before.kid)?.status).toBe("retiring");
    // Two hours later the old key's window (its tokens' expiry) is over: its tokens are refused.
    const later = new Date(Date.now() + 2 * 3600 * 1000);
    await expect(verifyTaskTokenNow(t.db, identity, before.token, later)).rejects.toMatchObject({ reason: "key_retired" });
    await expect(rotateKeys(t.db, auditor, dashboardKey, { maxTokenTtlSeconds: 3600 })).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("refuses a different master key for existing data, loudly and without changing anything", async () => {
    const other = parseMasterKey(generateMasterKey());
    await expect(assertMasterKeyMatchesData(t.db, other)).rejects.toThrow(/is not the one that encrypted this database's secrets.*Nothing was changed/);
    const agentId = await newAgent();
    const task = await createTask(t.db, admin, { agentId, purpose: "wrong key" });
    const otherDashboardKey = deriveProcessKeys(other).dashboardKey;
    await expect(issueTaskToken(t.db, admin, otherDashboardKey, identity, task.id)).rejects.toThrow(/sealed for key .* but this process holds key/);
    const keysBefore = await t.db.signingKey.count();
    await expect(rotateKeys(t.db, admin, otherDashboardKey, { maxTokenTtlSeconds: 3600 })).rejects.toThrow(/does not belong to the keys the data is sealed with/);
    expect(await t.db.signingKey.count()).toBe(keysBefore);
  });

  describe("revocation reaches a separately running verifier within a second", () => {
    let child: ChildProcess;
    let seq = 0;
    const pending = new Map<number, (r: { ok: boolean; reason?: string }) => void>();
    const check = (token: string) =>
      new Promise<{ ok: boolean; reason?: string }>((resolve) => {
        const id = ++seq;
        pending.set(id, resolve);
        child.send({ id, token });
      });
    const untilRefused = async (token: string): Promise<{ ms: number; reason?: string }> => {
      const start = performance.now();
      for (;;) {
        const r = await check(token);
        if (!r.ok) return { ms: performance.now() - start, reason: r.reason };
        if (performance.now() - start > 3000) throw new Error("still accepted after 3 s");
        await new Promise((res) => setTimeout(res, 5));
      }
    };

    beforeAll(async () => {
      child = fork(path.resolve("tests/support/verifier-child.ts"), [], {
        execArgv: ["--import", "tsx"],
        env: { ...process.env, BULKHEAD_WORKER_DATABASE_URL: t.workerUrl },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      await new Promise<void>((resolve) => {
        child.on("message", (m: { id?: number; ready?: boolean; ok?: boolean; reason?: string }) => {
          if (m.ready) return resolve();
          pending.get(m.id!)?.({ ok: m.ok!, reason: m.reason });
          pending.delete(m.id!);
        });
      });
    });
    afterAll(() => {
      child.disconnect();
    });

    const accepted = async (token: string) => {
      const start = performance.now();
      while (!(await check(token)).ok) {
        if (performance.now() - start > 3000) throw new Error("new token never accepted");
        await new Promise((r) => setTimeout(r, 5));
      }
    };

    it("ending a task", async () => {
      const task = await createTask(t.db, admin, { agentId: await newAgent(), purpose: "end me" });
      const { token } = await issueTaskToken(t.db, admin, dashboardKey, identity, task.id);
      await accepted(token);
      const started = performance.now();
      await endTask(t.db, admin, task.id);
      const r = await untilRefused(token);
      expect(r.reason).toBe("task_revoked");
      expect(performance.now() - started).toBeLessThan(1000);
    });

    it("suspending an agent", async () => {
      const agentId = await newAgent();
      const task = await createTask(t.db, admin, { agentId, purpose: "suspend me" });
      const { token } = await issueTaskToken(t.db, admin, dashboardKey, identity, task.id);
      await accepted(token);
      const started = performance.now();
      await setAgentSuspended(t.db, admin, agentId, true);
      const r = await untilRefused(token);
      expect(["agent_suspended", "task_revoked"]).toContain(r.reason);
      expect(performance.now() - started).toBeLessThan(1000);
    });

    it("revoking one token", async () => {
      const task = await createTask(t.db, admin, { agentId: await newAgent(), purpose: "revoke one" });
      const { token, jti } = await issueTaskToken(t.db, admin, dashboardKey, identity, task.id);
      await accepted(token);
      const started = performance.now();
      await revokeTaskToken(t.db, admin, jti);
      const r = await untilRefused(token);
      expect(r.reason).toBe("jti_revoked");
      expect(performance.now() - started).toBeLessThan(1000);
    });
  });
});
