import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setAgentSuspended } from "@/lib/agents/agents";
import { approveAndAllow } from "@/lib/approvals/allow-rule";
import { setApproverScope } from "@/lib/approvals/approver-scope";
import { decideApproval } from "@/lib/approvals/decide-approval";
import type { Actor } from "@/lib/auth/actor";
import { issueTaskToken, revokeTaskToken } from "@/lib/identity/task-tokens";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { createTask, endTask } from "@/lib/tasks/tasks";
import { setUserDisabled, setUserRole } from "@/lib/users/users";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { establishTestKeys } from "../../support/keys";

const identity = { issuer: "bulkhead", audience: "bulkhead-proxy" };
const ROUNDS = 12;

/**
 * State machines under concurrency: two actions at the same moment, or in an order nobody
 * planned for, must leave approvals, tasks, tokens and policies in a state that could also have
 * come from doing them one after the other, and the audit must say what happened in that order.
 */
describe("state races between decisions, kill switches, mints and policy saves", () => {
  let t: TestDatabase;
  let admin: Actor;
  let ownerId: string;
  let dashboardKey: Buffer;

  const newAgent = async () => (await t.db.agent.create({ data: { name: unique("agent"), ownerId } })).id;

  async function held(agentId: string, required = 1, expiresInMs = 600_000) {
    const task = await t.db.task.create({ data: { agentId, purpose: "race", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    return t.adminDb().approval.create({
      data: {
        taskId: task.id, agentId, requestDigest: "d".repeat(64), method: "DELETE", url: "https://api.railway.test/projects/1", reason: "held",
        actions: [{ service: "railway", effect: "destructive" }], requiredApprovals: required, expiresAt: new Date(Date.now() + expiresInMs),
      },
    });
  }

  const decisions = (approvalId: string) =>
    t.db.auditEvent.findMany({ where: { type: { in: ["approval.approved", "approval.vote", "approval.denied"] }, data: { path: ["approvalId"], equals: approvalId } }, orderBy: { seq: "asc" } });

  beforeAll(async () => {
    t = await createTestDatabase();
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    ownerId = a.user.id;
    dashboardKey = (await establishTestKeys(t.db)).dashboardKey;
  });
  afterAll(() => t.drop());

  describe("the decider's own authority is checked at decision time, under the approval's lock", () => {
    // A request authenticated (session or key read) just before an admin's change, whose
    // transaction runs just after it: the actor object is what the route built, the change is committed.
    it.each([
      ["disabled", (userId: string) => setUserDisabled(t.db, admin, userId, true)],
      ["demoted to auditor", (userId: string) => setUserRole(t.db, admin, userId, "auditor")],
      ["narrowed to another service", (userId: string) => setApproverScope(t.db, admin, userId, { services: ["github"] })],
    ])("an approver %s after authenticating cannot approve or deny", async (what, change) => {
      const agentId = await newAgent();
      for (const verdict of ["approve", "deny"] as const) {
        const approval = await held(agentId);
        const approver = await makeUser(t.db, "approver");
        await change(approver.user.id);
        const refused = await decideApproval(t.db, approver.actor, approval.id, verdict).then(() => null, (error: unknown) => error as { code?: string });
        expect(refused, what).toMatchObject({ code: expect.stringMatching(/FORBIDDEN|NOT_FOUND/) });
        expect((await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");
        expect(await decisions(approval.id)).toEqual([]);
        // The attempt itself is on record when it got as far as the decision (not for an approval
        // outside the approver's scope, which they cannot see at all).
        const attempts = await t.db.auditEvent.findMany({ where: { type: "approval.decision_refused", data: { path: ["approvalId"], equals: approval.id } } });
        if (refused?.code === "FORBIDDEN") {
          expect(attempts.map((e) => [e.actorId, e.outcome, (e.data as { verdict?: string }).verdict]), what).toEqual([[approver.user.id, "deny", verdict]]);
        } else expect(attempts).toEqual([]);
      }
    });

    it.each([
      ["disabling", "user.disabled", (userId: string) => setUserDisabled(t.db, admin, userId, true)],
      ["demotion", "user.role_changed", (userId: string) => setUserRole(t.db, admin, userId, "auditor")],
      ["narrowing to another service", "user.approver_scope_changed", (userId: string) => setApproverScope(t.db, admin, userId, { services: ["github"] })],
    ])("an approval racing the approver's %s is either refused or decided before it, never after", async (_what, changed, change) => {
      const agentId = await newAgent();
      for (let i = 0; i < ROUNDS; i++) {
        const approval = await held(agentId);
        const approver = await makeUser(t.db, "approver");
        await Promise.allSettled([decideApproval(t.db, approver.actor, approval.id, "approve"), change(approver.user.id)]);
        const events = await t.db.auditEvent.findMany({
          where: { OR: [{ type: changed, data: { path: ["userId"], equals: approver.user.id } }, { type: "approval.approved", data: { path: ["approvalId"], equals: approval.id } }] },
          orderBy: { seq: "asc" },
        });
        // Approved and then changed is a valid order; changed and then approved by them is not.
        expect(events.map((e) => e.type)[0]).toBe(events.length === 2 ? "approval.approved" : changed);
        const status = (await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status;
        // Approved and then changed: the approval, not used yet, goes with its approver's authority.
        expect(status).toBe(events.length === 2 ? "cancelled" : "pending");
      }
    });
  });

  it("a task created while its agent is being suspended is revoked with the others: reactivation brings nothing back", async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const agentId = await newAgent();
      await Promise.allSettled([createTask(t.db, admin, { agentId, purpose: "racing the suspension" }), setAgentSuspended(t.db, admin, agentId, true)]);
      expect((await t.db.agent.findUniqueOrThrow({ where: { id: agentId } })).status).toBe("suspended");
      expect(await t.db.task.count({ where: { agentId, status: "active" } })).toBe(0);
      await setAgentSuspended(t.db, admin, agentId, false);
      expect(await t.db.task.count({ where: { agentId, status: "active" } })).toBe(0);
    }
  });

  it.each([
    ["ended", (taskId: string, agentId: string) => endTask(t.db, admin, taskId).then(() => agentId)],
    ["revoked by suspending its agent", (_taskId: string, agentId: string) => setAgentSuspended(t.db, admin, agentId, true)],
  ])("no token is minted for a task being %s at the same moment", async (_what, kill) => {
    for (let i = 0; i < ROUNDS; i++) {
      const agentId = await newAgent();
      const task = await createTask(t.db, admin, { agentId, purpose: "racing the kill switch" });
      const [minted] = await Promise.allSettled([issueTaskToken(t.db, admin, dashboardKey, identity, task.id), kill(task.id, agentId)]);
      const events = await t.db.auditEvent.findMany({ where: { taskId: task.id, type: { in: ["token.minted", "task.ended", "agent.suspended"] } }, orderBy: { seq: "asc" } });
      const killed = await t.db.auditEvent.findFirst({ where: { OR: [{ taskId: task.id, type: "task.ended" }, { agentId, type: "agent.suspended" }] }, orderBy: { seq: "asc" } });
      const mint = events.find((e) => e.type === "token.minted");
      if (mint) {
        // Minted first, then killed: the token's task ended after it (and the token is dead with it).
        expect(minted!.status).toBe("fulfilled");
        expect(Number(mint.seq) < Number(killed!.seq)).toBe(true);
      } else {
        expect(minted!.status).toBe("rejected");
        expect(await t.db.issuedToken.count({ where: { taskId: task.id } })).toBe(0);
      }
    }
  });

  it("two policy saves at once are taken in turn: the second is judged against (and records) the first's policy", async () => {
    const base = "unlisted: deny\nrules:\n  - service: railway\n    effects: [read]\n";
    const withDeny = `${base}  - service: railway\n    environments: [production]\n    decision: deny\n    effects: [read]\n`;
    const otherNarrowing = "unlisted: deny\nrules: []\n";
    // A session too old for step-up: it may narrow, never widen.
    const stale = await makeUser(t.db, "admin");
    const staleActor: Actor = { kind: "user", userId: stale.user.id, email: stale.email, role: "admin", authenticatedAt: Date.now() - 3600_000 };
    for (let i = 0; i < ROUNDS; i++) {
      const agentId = await newAgent();
      const task = await createTask(t.db, admin, { agentId, purpose: "policy race", policyYaml: base });
      await Promise.allSettled([updateTaskPolicy(t.db, admin, task.id, withDeny), updateTaskPolicy(t.db, staleActor, task.id, otherNarrowing)]);
      const events = await t.db.auditEvent.findMany({ where: { taskId: task.id, type: "task.policy_changed" }, orderBy: { seq: "asc" } });
      const row = await t.db.task.findUniqueOrThrow({ where: { id: task.id } });
      // Every saved version is recorded once, each from the version before it, with what really was in force.
      expect(events.map((e) => (e.data as { toVersion: number }).toVersion)).toEqual(events.map((_, n) => 2 + n));
      let inForce = base;
      for (const e of events) {
        const data = e.data as { before: string; after: string; fromVersion: number; toVersion: number };
        expect(data.fromVersion).toBe(data.toVersion - 1);
        expect(data.before).toBe(inForce);
        inForce = data.after;
      }
      expect(row.policyYaml).toBe(inForce);
      expect(row.policyVersion).toBe(1 + events.length);
    }
  });
  describe("the same change twice at once happens, and is audited, once", () => {
    it("suspending an agent twice, then reactivating it twice", async () => {
      for (let i = 0; i < ROUNDS; i++) {
        const agentId = await newAgent();
        await createTask(t.db, admin, { agentId, purpose: "suspended twice" });
        // The second is told it was done already (409), and records nothing.
        const once = async (changes: Array<Promise<unknown>>) => {
          const settled = await Promise.allSettled(changes);
          expect(settled.filter((r) => r.status === "fulfilled")).toHaveLength(1);
          expect(settled.find((r) => r.status === "rejected")).toMatchObject({ reason: { code: "CONFLICT" } });
        };
        await once([setAgentSuspended(t.db, admin, agentId, true), setAgentSuspended(t.db, admin, agentId, true)]);
        await once([setAgentSuspended(t.db, admin, agentId, false), setAgentSuspended(t.db, admin, agentId, false)]);
        const events = await t.db.auditEvent.findMany({ where: { agentId, type: { in: ["agent.suspended", "agent.reactivated"] } }, orderBy: { seq: "asc" } });
        expect(events.map((e) => e.type)).toEqual(["agent.suspended", "agent.reactivated"]);
        expect((events[0]!.data as { revokedTasks: number }).revokedTasks).toBe(1);
      }
    });

    it("revoking a token twice", async () => {
      for (let i = 0; i < ROUNDS; i++) {
        const agentId = await newAgent();
        const task = await createTask(t.db, admin, { agentId, purpose: "revoked twice" });
        const { jti } = await issueTaskToken(t.db, admin, dashboardKey, identity, task.id);
        const settled = await Promise.allSettled([revokeTaskToken(t.db, admin, jti), revokeTaskToken(t.db, admin, jti)]);
        expect(settled.find((r) => r.status === "rejected")).toMatchObject({ reason: { code: "CONFLICT" } });
        expect(await t.db.auditEvent.count({ where: { taskId: task.id, type: "token.revoked" } })).toBe(1);
      }
    });

    it("disabling a user twice", async () => {
      for (let i = 0; i < ROUNDS; i++) {
        const someone = await makeUser(t.db, "approver");
        await Promise.all([setUserDisabled(t.db, admin, someone.user.id, true), setUserDisabled(t.db, admin, someone.user.id, true)]);
        expect(await t.db.auditEvent.count({ where: { type: "user.disabled", data: { path: ["userId"], equals: someone.user.id } } })).toBe(1);
      }
    });
  });

  it.each([
    ["demote", (db: TestDatabase["db"], by: Actor, userId: string) => setUserRole(db, by, userId, "approver")],
    ["disable", (db: TestDatabase["db"], by: Actor, userId: string) => setUserDisabled(db, by, userId, true)],
  ])("two last admins who %s each other at once leave one admin, never none", async (_what, change) => {
    // A database of its own: "the last admin" counts every admin there is.
    const own = await createTestDatabase();
    try {
      for (let i = 0; i < ROUNDS; i++) {
        await own.db.user.updateMany({ where: { role: "admin" }, data: { role: "auditor" } });
        const a = await makeUser(own.db, "admin");
        const b = await makeUser(own.db, "admin");
        await Promise.allSettled([change(own.db, a.actor, b.user.id), change(own.db, b.actor, a.user.id)]);
        expect(await own.db.user.count({ where: { role: "admin", disabledAt: null } })).toBe(1);
      }
    } finally {
      await own.drop();
    }
  });
  describe("votes at the same moment", () => {
    it("one person voting through a session and an API key (and a second session) at once is one vote", async () => {
      const agentId = await newAgent();
      for (let i = 0; i < ROUNDS; i++) {
        const approval = await held(agentId, 2);
        const person = await makeUser(t.db, "approver");
        const key = await t.db.apiKey.create({ data: { name: unique("key"), prefix: unique("p").slice(0, 10), keyHash: unique("hash"), role: "approver", createdById: person.user.id } });
        const viaKey: Actor = { kind: "api_key", apiKeyId: key.id, role: "approver", createdById: person.user.id };
        const results = await Promise.allSettled([
          decideApproval(t.db, person.actor, approval.id, "approve"),
          decideApproval(t.db, viaKey, approval.id, "approve"),
          decideApproval(t.db, { ...person.actor, sessionId: undefined }, approval.id, "approve"),
        ]);
        expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        expect((await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");
        expect(await t.db.approvalVote.count({ where: { approvalId: approval.id } })).toBe(1);
        expect((await decisions(approval.id)).map((e) => e.type)).toEqual(["approval.vote"]);
      }
    });

    it("two approvals completing a quorum and a denial at once: exactly one outcome, audited once, by whoever made it", async () => {
      const agentId = await newAgent();
      for (let i = 0; i < ROUNDS; i++) {
        const approval = await held(agentId, 2);
        const [a, b, c] = await Promise.all([makeUser(t.db, "approver"), makeUser(t.db, "approver"), makeUser(t.db, "approver")]);
        await Promise.allSettled([
          decideApproval(t.db, a.actor, approval.id, "approve"),
          decideApproval(t.db, b.actor, approval.id, "approve"),
          decideApproval(t.db, c.actor, approval.id, "deny"),
        ]);
        const row = await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } });
        const events = await decisions(approval.id);
        const finals = events.filter((e) => e.type !== "approval.vote");
        expect(finals).toHaveLength(1);
        expect(finals[0]!.type).toBe(row.status === "approved" ? "approval.approved" : "approval.denied");
        expect(finals[0]!.actorId).toBe(row.decidedById);
        if (row.status === "approved") expect(new Set((finals[0]!.data as { approvers: string[] }).approvers)).toEqual(new Set([a.user.id, b.user.id]));
        else expect(row.decidedById).toBe(c.user.id);
      }
    });
  });
  it("a decision that waited for the approval's lock until after its deadline is refused as timed out", async () => {
    const agentId = await newAgent();
    const approval = await held(agentId, 1, 400);
    const approver = await makeUser(t.db, "approver");
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    // Another decision (or a worker cancelling) holds the row past the deadline.
    const holder = t.adminDb().$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT 1 FROM "approvals" WHERE "id" = ${approval.id}::uuid FOR UPDATE`;
        locked();
        await new Promise((r) => setTimeout(r, 800));
      },
      { timeout: 5000 },
    );
    await isLocked;
    const decision = decideApproval(t.db, approver.actor, approval.id, "approve").catch((e: unknown) => e);
    await holder;
    expect(await decision).toMatchObject({ code: "CONFLICT", message: expect.stringMatching(/timed out/) as unknown as string });
    expect((await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");
    expect(await decisions(approval.id)).toEqual([]);
  });
  it("approve-and-allow on two requests of one task at once: both approved, and every rule the audit says was added is in the policy", async () => {
    const policy = "unlisted: deny\nrules:\n  - service: railway\n    effects: [read]\n";
    for (let i = 0; i < ROUNDS; i++) {
      const agentId = await newAgent();
      const task = await createTask(t.db, admin, { agentId, purpose: "allow twice", policyYaml: policy, scope: "railway:*:irreversible" });
      const approvals = await Promise.all(
        ["vol_a", "vol_b"].map((resource) =>
          t.adminDb().approval.create({
            data: {
              taskId: task.id, agentId, requestDigest: "d".repeat(64), method: "POST", url: "https://backboard.railway.com/graphql/v2", reason: "held",
              actions: [{ service: "railway", environment: "production", operation: "volumeDelete", resource, effect: "irreversible" }], expiresAt: new Date(Date.now() + 600_000),
            },
          }),
        ),
      );
      const approver = await makeUser(t.db, "approver");
      await Promise.allSettled(approvals.map((a) => approveAndAllow(t.db, approver.actor, a.id)));
      expect(await t.db.approval.count({ where: { id: { in: approvals.map((a) => a.id) }, status: "approved" } })).toBe(2);
      const events = await t.db.auditEvent.findMany({ where: { taskId: task.id, type: "task.policy_changed" }, orderBy: { seq: "asc" } });
      expect(events.length).toBeGreaterThanOrEqual(1);
      const row = await t.db.task.findUniqueOrThrow({ where: { id: task.id } });
      let inForce = policy;
      for (const e of events) {
        const data = e.data as { before: string; after: string };
        expect(data.before).toBe(inForce);
        inForce = data.after;
      }
      expect(row.policyYaml).toBe(inForce);
    }
  });
});
