import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getApproverScope, listApproversWithScopes, setApproverScope } from "@/lib/approvals/approver-scope";
import { getApprovalSettings, updateApprovalSettings } from "@/lib/approvals/settings";
import type { Actor } from "@/lib/auth/actor";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/** A session whose last sign-in was a while ago (what a copied cookie looks like). */
const stale = (actor: Actor): Actor => ({ ...(actor as Extract<Actor, { kind: "user" }>), authenticatedAt: Date.now() - 3600_000 });

describe("who must approve: settings and approver scopes", () => {
  let t: TestDatabase;
  let admin: Actor;
  let approver: Actor;

  beforeAll(async () => {
    t = await createTestDatabase();
    admin = (await makeUser(t.db, "admin")).actor;
    approver = (await makeUser(t.db, "approver")).actor;
  });
  afterAll(() => t.drop());

  it("asking for more approvers applies at once; letting fewer approve needs step-up; approvers cannot change it", async () => {
    await expect(updateApprovalSettings(t.db, approver, { fourEyes: true })).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect(await updateApprovalSettings(t.db, stale(admin), { fourEyes: true, requiredByEffect: { irreversible: 3 } })).toEqual({ fourEyes: true, requiredByEffect: { irreversible: 3 } });
    await expect(updateApprovalSettings(t.db, stale(admin), { fourEyes: false })).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    await expect(updateApprovalSettings(t.db, stale(admin), { requiredByEffect: { irreversible: 2 } })).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    expect(await getApprovalSettings(t.db, approver)).toEqual({ fourEyes: true, requiredByEffect: { irreversible: 3 } });
    await expect(updateApprovalSettings(t.db, admin, { requiredByEffect: { irreversible: 11 } })).rejects.toThrow();
    await updateApprovalSettings(t.db, admin, { fourEyes: false, requiredByEffect: {} });
    const events = await t.db.auditEvent.findMany({ where: { type: "settings.changed", data: { path: ["key"], equals: "approvals" } } });
    expect(events).toHaveLength(2);
  });

  it("an approver scope needs real agents; narrowing is free, widening or clearing needs step-up", async () => {
    const target = await makeUser(t.db, "approver");
    const owner = (admin as { userId: string }).userId;
    const a1 = await t.db.agent.create({ data: { name: unique("a"), ownerId: owner } });
    const a2 = await t.db.agent.create({ data: { name: unique("a"), ownerId: owner } });
    await expect(setApproverScope(t.db, admin, target.user.id, { agents: ["00000000-0000-4000-8000-000000000000"] })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await setApproverScope(t.db, stale(admin), target.user.id, { agents: [a1.id, a2.id], services: ["railway"] });
    await setApproverScope(t.db, stale(admin), target.user.id, { agents: [a1.id] });
    await expect(setApproverScope(t.db, stale(admin), target.user.id, { agents: [a1.id, a2.id] })).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    await expect(setApproverScope(t.db, stale(admin), target.user.id, {})).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    expect(await getApproverScope(t.db, admin, target.user.id)).toEqual({ agents: [a1.id], services: [] });
    await expect(setApproverScope(t.db, approver, target.user.id, {})).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("an agent id sent in capitals is the same agent: stored lower-cased, named on Settings, no widening", async () => {
    const target = await makeUser(t.db, "approver");
    const owner = (admin as { userId: string }).userId;
    const agent = await t.db.agent.create({ data: { name: unique("caps"), ownerId: owner } });
    // The same id twice, in two spellings, is one agent (it used to be "Some of these agents do not exist").
    expect(await setApproverScope(t.db, stale(admin), target.user.id, { agents: [agent.id.toUpperCase(), agent.id] })).toEqual({ agents: [agent.id], services: [] });
    expect(await getApproverScope(t.db, admin, target.user.id)).toEqual({ agents: [agent.id], services: [] });
    // Saving it again in capitals narrows nothing and widens nothing: no step-up asked of a stale session.
    await setApproverScope(t.db, stale(admin), target.user.id, { agents: [agent.id.toUpperCase()] });
    const listed = (await listApproversWithScopes(t.db, admin)).find((u) => u.id === target.user.id);
    expect(listed?.scope).toBe(`agent ${agent.name}`);
  });

  /** Waits (by state, not by time) until `n` sessions of this database wait for a lock. */
  const waitingForLocks = async (n: number) => {
    for (let i = 0; i < 600; i++) {
      const [row] = await t.db.$queryRaw<Array<{ n: number }>>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
      if (row!.n >= n) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`never saw ${n} sessions waiting for a lock`);
  };

  /** Holds a row lock on `sql`'s rows until the returned release() is called. */
  const holdRows = async (lock: (tx: Parameters<Parameters<typeof t.db.$transaction>[0]>[0]) => Promise<unknown>) => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const held = new Promise<void>((r) => (locked = r));
    const done = t.db.$transaction(
      async (tx) => {
        await lock(tx);
        locked();
        await gate;
      },
      { timeout: 60_000 },
    );
    await held;
    return { release: async () => (release(), await done) };
  };

  it("a change made while another is being saved is merged into what that one saved, never into what it read before", async () => {
    await updateApprovalSettings(t.db, admin, { fourEyes: false, requiredByEffect: {} });
    // Both requests are in flight at once: the first turns four-eyes on, the second (a session
    // without a recent sign-in) asks for two approvers for irreversible requests.
    const lock = await holdRows((tx) => tx.$queryRaw`SELECT 1 FROM "settings" WHERE "key" LIKE 'approvals.%' FOR UPDATE`);
    const turnOn = updateApprovalSettings(t.db, admin, { fourEyes: true });
    await waitingForLocks(1);
    const moreApprovers = updateApprovalSettings(t.db, stale(admin), { requiredByEffect: { irreversible: 2 } });
    await waitingForLocks(2);
    await lock.release();
    expect(await turnOn).toEqual({ fourEyes: true, requiredByEffect: {} });
    // It asked for more approvers only: four-eyes stays on (it was not switched off again,
    // without step-up, by writing back the value read before the first change committed).
    expect(await moreApprovers).toEqual({ fourEyes: true, requiredByEffect: { irreversible: 2 } });
    expect(await getApprovalSettings(t.db, admin)).toEqual({ fourEyes: true, requiredByEffect: { irreversible: 2 } });
    const last = await t.db.auditEvent.findFirst({ where: { type: "settings.changed" }, orderBy: { id: "desc" } });
    expect(last?.data).toMatchObject({ from: { fourEyes: true, requiredByEffect: {} }, to: { fourEyes: true, requiredByEffect: { irreversible: 2 } } });
  });

  it("re-saving an approver's old scope while it is being narrowed is judged against the narrowed scope (step-up)", async () => {
    const target = await makeUser(t.db, "approver");
    const owner = (admin as { userId: string }).userId;
    const a1 = await t.db.agent.create({ data: { name: unique("a"), ownerId: owner } });
    const a2 = await t.db.agent.create({ data: { name: unique("a"), ownerId: owner } });
    await setApproverScope(t.db, admin, target.user.id, { agents: [a1.id, a2.id] });
    const lock = await holdRows((tx) => tx.$queryRaw`SELECT 1 FROM "approver_scopes" WHERE "user_id" = ${target.user.id}::uuid FOR UPDATE`);
    const narrow = setApproverScope(t.db, admin, target.user.id, { agents: [a1.id] });
    await waitingForLocks(1);
    // A stale session saves the scope it loaded (both agents): no change from what it read.
    const resave = setApproverScope(t.db, stale(admin), target.user.id, { agents: [a1.id, a2.id] }).catch((e: unknown) => e);
    await waitingForLocks(2);
    await lock.release();
    expect(await narrow).toEqual({ agents: [a1.id], services: [] });
    expect(await resave).toMatchObject({ code: "STEP_UP_REQUIRED" });
    expect(await getApproverScope(t.db, admin, target.user.id)).toEqual({ agents: [a1.id], services: [] });
  });
});
