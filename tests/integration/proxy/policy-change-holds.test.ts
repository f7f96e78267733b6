import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { deleteCredential } from "@/lib/vault/delete-credential";
import { rotateCredential } from "@/lib/vault/rotate-credential";
import { makeUser } from "../../support/factories";
import { viaProxy, type ProxyResponse } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const DELETE_STAGING = { query: 'mutation { volumeDelete(volumeId: "vol_staging") }' };
const HELD_POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
/** The same task narrowed while the request waits: irreversible actions on Railway are now denied. */
const NARROWED = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write]\n  - service: railway\n    decision: deny\n    effects: [irreversible]\n";
/** A change that does not touch the held action (it is still held). */
const UNRELATED = `${HELD_POLICY}  - service: github\n    effects: [read]\n`;

/**
 * A held request is judged by the policy in force when it is released, not only when it was
 * held: a policy narrowed while the request waited (an incident response: "deny that, now") wins
 * over an approval given afterwards, as it does for a 202-and-poll grant, whose retry is judged
 * afresh. A credential rotated or deleted meanwhile: the request leaves with what is in force
 * then, never the old secret. The upstream counts (and records) what reaches it.
 */
describe("a policy or credential changed while a request is held", () => {
  let h: ProxyHarness;
  let railway: Upstream;

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: "30" } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  const send = (token: string): Promise<ProxyResponse> =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json" }, body: JSON.stringify(DELETE_STAGING) });

  const held = async () => {
    const task = await h.newTask(HELD_POLICY);
    const response = send(task.token);
    for (let i = 0; i < 500; i++) {
      const approval = await h.t.db.approval.findFirst({ where: { taskId: task.taskId, status: "pending" } });
      if (approval) return { ...task, response, approval };
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no pending approval appeared");
  };

  it("saving a policy that denies a held request cancels it at once: the agent is answered, nothing is left to approve, nothing reaches the upstream", async () => {
    const hold = await held();
    expect(hold.approval.policyVersion).toBe(1);
    const before = railway.hits.length;
    const saved = await updateTaskPolicy(h.t.db, h.admin, hold.taskId, NARROWED);
    expect(saved).toEqual({ policyVersion: 2, cancelledApprovals: 1 });
    // Answered without anyone deciding: the cancellation wakes the worker holding it.
    const res = await hold.response;
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: "approval_cancelled", kind: "denied" });
    expect(JSON.stringify(res.json)).toContain("policy was changed and now denies the request");
    const row = await h.t.db.approval.findUniqueOrThrow({ where: { id: hold.approval.id } });
    expect(row).toMatchObject({ status: "cancelled", cancelReason: "policy_changed" });
    const cancelled = await h.t.db.auditEvent.findFirst({ where: { type: "approval.cancelled", data: { path: ["approvalId"], equals: hold.approval.id } } });
    expect(cancelled?.data).toMatchObject({ cause: "policy_changed" });
    // An approver who opens it afterwards is told why, and nothing is released.
    const approver = await makeUser(h.t.db, "approver");
    await expect(decideApproval(h.t.db, approver.actor, hold.approval.id, "approve")).rejects.toMatchObject({ code: "CONFLICT", message: expect.stringContaining("policy was changed") });
    expect(railway.hits.length).toBe(before);
  });

  it("a policy changed by a path that cancels nothing (written straight to the database) still cannot release a request it denies: the worker judges it again at release", async () => {
    const hold = await held();
    await h.t.db.task.update({ where: { id: hold.taskId }, data: { policyYaml: NARROWED, policyVersion: { increment: 1 } } });
    await h.sync();
    const before = railway.hits.length;
    const approver = await makeUser(h.t.db, "approver");
    await decideApproval(h.t.db, approver.actor, hold.approval.id, "approve");
    const res = await hold.response;
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: "policy_changed", kind: "denied" });
    expect(railway.hits.length).toBe(before);
    const refusal = (await h.events()).find((e) => e.data.code === "policy_changed" && e.data.approvalId === hold.approval.id);
    expect(refusal?.outcome).toBe("deny");
    expect(refusal?.data).toMatchObject({ heldUnderPolicyVersion: 1, policyVersion: 2 });
  });

  it("a policy change that still holds the action does not stop the approved request", async () => {
    const hold = await held();
    expect(await updateTaskPolicy(h.t.db, h.admin, hold.taskId, UNRELATED)).toEqual({ policyVersion: 2, cancelledApprovals: 0 });
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: hold.approval.id } })).status).toBe("pending");
    await h.sync();
    const before = railway.hits.length;
    const approver = await makeUser(h.t.db, "approver");
    await decideApproval(h.t.db, approver.actor, hold.approval.id, "approve");
    expect((await hold.response).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });
  it("a credential rotated, then deleted, while a request is held: the approved request carries what is in force when it leaves", async () => {
    await h.addCredential({ name: "railway-held", scheme: "http", host: RAILWAY, port: railway.port, headerTemplate: "Project-Access-Token: {secret}", secret: "old-secret-1234", environments: "staging" });
    const credential = await h.t.db.credential.findFirstOrThrow({ where: { name: "railway-held" } });
    const approver = await makeUser(h.t.db, "approver");

    const rotated = await held();
    await rotateCredential(h.t.db, h.admin, h.keys.workerKey, credential.id, "new-secret-5678");
    await h.sync();
    await decideApproval(h.t.db, approver.actor, rotated.approval.id, "approve");
    expect((await rotated.response).status).toBe(200);
    expect(railway.hits.at(-1)!.headers["project-access-token"]).toBe("new-secret-5678");

    const deleted = await held();
    await deleteCredential(h.t.db, h.admin, credential.id);
    await h.sync();
    await decideApproval(h.t.db, approver.actor, deleted.approval.id, "approve");
    await deleted.response;
    // Whatever the upstream answers, the deleted secret never leaves.
    expect(JSON.stringify(railway.hits.at(-1)!.headers)).not.toMatch(/old-secret|new-secret/);
  });
});
