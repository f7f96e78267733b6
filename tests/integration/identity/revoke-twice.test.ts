import os from "node:os";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as suspendRoute from "@/app/api/v1/agents/[id]/suspend/route";
import * as reactivateRoute from "@/app/api/v1/agents/[id]/reactivate/route";
import * as endRoute from "@/app/api/v1/tasks/[id]/end/route";
import * as revokeRoute from "@/app/api/v1/tokens/[jti]/revoke/route";
import { setAgentSuspended } from "@/lib/agents/agents";
import { createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { issueTaskToken, revokeTaskToken } from "@/lib/identity/task-tokens";
import { createTask, endTask } from "@/lib/tasks/tasks";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";
import { callRoute, routeDatabase, type RouteDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

const identity = { issuer: "bulkhead", audience: "bulkhead-proxy" };

/**
 * Every way an operator has to pull a kill switch (the API with a key, the CLI, and the functions
 * the dashboard's actions call) does it once, audited with who did it. A second attempt records
 * nothing and says it was done already and when: the API and the CLI answer it as done with
 * `changed: false` (200, exit 0: the state asked for holds, and a script pulling switches in an
 * incident must not stop on one someone else pulled first), the dashboard's actions with a
 * CONFLICT (the page the person acted on was out of date). A second "revoke" used to answer
 * exactly as the first did (`revoked: true`, "Token … revoked."), telling the person or script
 * that their action took effect.
 */
describe("revoking, ending and suspending twice", () => {
  let t: RouteDatabase;
  let admin: Actor;
  let key: string;
  let keyId: string;
  let agentId: string;
  const cli = async (argv: string[]) => {
    const previous = process.env.BULKHEAD_MASTER_KEY;
    process.env.BULKHEAD_MASTER_KEY = t.keys!.masterText;
    try {
      return await runCli(argv, { database: t });
    } finally {
      if (previous === undefined) delete process.env.BULKHEAD_MASTER_KEY;
      else process.env.BULKHEAD_MASTER_KEY = previous;
    }
  };
  const newAgent = async () => (await t.db.agent.create({ data: { name: unique("twice"), ownerId: (await t.db.user.findFirstOrThrow({ where: { role: "admin" } })).id } })).id;
  const post = <P,>(handler: Parameters<typeof callRoute<P>>[0], path: string, params: P) => callRoute(handler, path, { method: "POST", key, params });
  const events = (where: Record<string, unknown>) => t.db.auditEvent.findMany({ where, orderBy: { seq: "asc" } });

  beforeAll(async () => {
    t = await routeDatabase({ keys: true });
    admin = (await makeUser(t.db, "admin")).actor;
    const created = await createApiKey(t.db, admin, { name: unique("ops"), role: "admin" });
    key = created.key;
    keyId = created.apiKey.id;
    agentId = await newAgent();
  });
  afterAll(() => t.drop());

  it("the API: a token, a task and an agent each once, by the key; the second call changes nothing and says when", async () => {
    const task = await createTask(t.db, admin, { agentId, purpose: "api twice" });
    const { jti } = await issueTaskToken(t.db, admin, t.keys!.dashboardKey, identity, task.id);

    const first = await post(revokeRoute.POST, `/api/v1/tokens/${jti}/revoke`, { jti });
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ jti, revoked: true, changed: true });
    const second = await post(revokeRoute.POST, `/api/v1/tokens/${jti}/revoke`, { jti });
    expect(second.status).toBe(200);
    const revokedAt = (await t.db.issuedToken.findUniqueOrThrow({ where: { jti } })).revokedAt!.toISOString();
    expect(await second.json()).toEqual({ jti, revoked: true, changed: false, message: expect.stringContaining(`already revoked at ${revokedAt}`) });
    const revoked = await events({ type: "token.revoked", taskId: task.id });
    expect(revoked).toHaveLength(1);
    expect(revoked[0]).toMatchObject({ actorType: "api_key", actorId: keyId });

    const end = await post(endRoute.POST, `/api/v1/tasks/${task.id}/end`, { id: task.id });
    expect(end.status).toBe(200);
    expect(await end.json()).toMatchObject({ task: { id: task.id, status: "ended" }, changed: true });
    const again = await post(endRoute.POST, `/api/v1/tasks/${task.id}/end`, { id: task.id });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ task: { id: task.id, status: "ended" }, changed: false, message: expect.stringMatching(/already ended at .*ended through the API/) });
    const ended = await events({ type: "task.ended", taskId: task.id });
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ actorType: "api_key", actorId: keyId });

    const other = await newAgent();
    await createTask(t.db, admin, { agentId: other, purpose: "suspended twice" });
    expect(await (await post(suspendRoute.POST, `/api/v1/agents/${other}/suspend`, { id: other })).json()).toMatchObject({ agent: { status: "suspended" }, changed: true });
    const resuspend = await post(suspendRoute.POST, `/api/v1/agents/${other}/suspend`, { id: other });
    expect(resuspend.status).toBe(200);
    expect(await resuspend.json()).toMatchObject({ agent: { id: other, status: "suspended" }, changed: false, message: expect.stringMatching(/already suspended since/) });
    expect(await (await post(reactivateRoute.POST, `/api/v1/agents/${other}/reactivate`, { id: other })).json()).toMatchObject({ agent: { status: "active" }, changed: true });
    const reactivate = await post(reactivateRoute.POST, `/api/v1/agents/${other}/reactivate`, { id: other });
    expect(reactivate.status).toBe(200);
    expect(await reactivate.json()).toMatchObject({ agent: { id: other, status: "active" }, changed: false, message: expect.stringMatching(/already active/) });
    const changes = await events({ agentId: other, type: { in: ["agent.suspended", "agent.reactivated"] } });
    expect(changes.map((e) => [e.type, e.actorType, e.actorId])).toEqual([
      ["agent.suspended", "api_key", keyId],
      ["agent.reactivated", "api_key", keyId],
    ]);
  });

  it("the CLI: the second revocation, end and suspension exit 0 saying they were done already and when, and record nothing", async () => {
    const task = await createTask(t.db, admin, { agentId, purpose: "cli twice" });
    const { jti } = await issueTaskToken(t.db, admin, t.keys!.dashboardKey, identity, task.id);

    const first = await cli(["token", "revoke", jti]);
    expect(first.code, first.stderr.join()).toBe(0);
    expect(first.stdout.join()).toMatch(/revoked\./);
    const second = await cli(["token", "revoke", jti]);
    expect(second.code, second.stderr.join()).toBe(0);
    expect(second.stdout.join()).toMatch(/already revoked at .*nothing was changed/);
    const json = await cli(["token", "revoke", jti, "--json"]);
    expect(JSON.parse(json.stdout.join(""))).toMatchObject({ jti, revoked: true, changed: false });
    // By whom: the CLI is Bulkhead itself, run by an account of this machine.
    expect(await events({ type: "token.revoked", taskId: task.id })).toMatchObject([{ actorType: "system", actorId: "cli", data: { osUser: os.userInfo().username } }]);

    expect((await cli(["task", "end", task.id])).code).toBe(0);
    const end = await cli(["task", "end", task.id]);
    expect(end.code, end.stderr.join()).toBe(0);
    expect(end.stdout.join()).toMatch(/already ended at .*ended from the CLI/);
    expect(await events({ type: "task.ended", taskId: task.id })).toMatchObject([{ actorType: "system", actorId: "cli", data: { osUser: os.userInfo().username } }]);

    const other = await newAgent();
    expect((await cli(["agent", "suspend", other])).code).toBe(0);
    const suspend = await cli(["agent", "suspend", other]);
    expect(suspend.code, suspend.stderr.join()).toBe(0);
    expect(suspend.stdout.join()).toMatch(/already suspended since/);
    expect(await events({ agentId: other, type: "agent.suspended" })).toMatchObject([{ actorType: "system", actorId: "cli", data: { osUser: os.userInfo().username } }]);
  });

  it("the dashboard's actions (these functions): a task expired before anyone recorded it is still reported as expired, not refused", async () => {
    const task = await createTask(t.db, admin, { agentId, purpose: "ran out" });
    await t.db.task.update({ where: { id: task.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect((await endTask(t.db, admin, task.id)).status).toBe("expired");
    await expect(endTask(t.db, admin, task.id)).rejects.toMatchObject({ code: "CONFLICT", message: expect.stringMatching(/already expired at .*time to live reached/) });
    // A task revoked with its agent says so.
    const other = await newAgent();
    const revokedTask = await createTask(t.db, admin, { agentId: other, purpose: "revoked with its agent" });
    await setAgentSuspended(t.db, admin, other, true);
    await expect(endTask(t.db, admin, revokedTask.id)).rejects.toMatchObject({ code: "CONFLICT", message: expect.stringMatching(/already revoked at .*agent suspended/) });
    await expect(setAgentSuspended(t.db, admin, other, true)).rejects.toMatchObject({ code: "CONFLICT" });
    // Two at once: one wins, the other is told.
    const racing = await createTask(t.db, admin, { agentId, purpose: "two at once" });
    const { jti } = await issueTaskToken(t.db, admin, t.keys!.dashboardKey, identity, racing.id);
    const both = await Promise.allSettled([revokeTaskToken(t.db, admin, jti), revokeTaskToken(t.db, admin, jti)]);
    expect(both.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(both.find((r) => r.status === "rejected")).toMatchObject({ reason: { code: "CONFLICT" } });
    expect(await t.db.auditEvent.count({ where: { taskId: racing.id, type: "token.revoked" } })).toBe(1);
  });
});
