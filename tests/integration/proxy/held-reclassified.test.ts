import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { stringify } from "yaml";
import { setInventoryYaml } from "@/lib/services/inventory";
import { saveCustomService } from "@/lib/services/services";
import { makeUser } from "../../support/factories";
import { viaProxy, type ProxyResponse } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const DELETE = { query: 'mutation { volumeDelete(volumeId: "vol_a") }' };
/** Staging only: production is denied (unlisted). */
const STAGING_ONLY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
/** Everywhere: production is held too, so only the grant stands between the retry and the upstream. */
const EVERYWHERE = "unlisted: deny\nrules:\n  - service: railway\n    effects: [read, write, destructive, irreversible]\n";
const STAGING = "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_a]\n";
const PRODUCTION = "entries:\n  - environment: production\n    service: railway\n    resources: [vol_a]\n";

/**
 * What a person approves is what the card says the request does (delete volume vol_a, staging).
 * The environment inventory (and the service registry) can change while the request waits, and
 * neither changes the task's policy version: the worker used to release the approved request as
 * it was classified when held, so a volume moved to production meanwhile was deleted under an
 * approval given for staging (and past a policy and scope that now deny production). A request
 * is released, and a 202 grant redeemed, only while it still classifies into the same actions.
 */
describe("the inventory changed while a request is held", () => {
  let h: ProxyHarness;
  let railway: Upstream;

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: "30" } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  const send = (token: string, headers: Record<string, string> = {}): Promise<ProxyResponse> =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(DELETE) });
  const pending = async (taskId: string) => {
    for (let i = 0; i < 500; i++) {
      const approval = await h.t.db.approval.findFirst({ where: { taskId, status: "pending" } });
      if (approval) return approval;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no pending approval appeared");
  };
  const inventory = async (yaml: string) => {
    await setInventoryYaml(h.t.db, h.admin, yaml);
    await h.sync();
  };

  it("a held request whose resource the inventory now calls production is not released by an approval given for staging", async () => {
    await inventory(STAGING);
    const task = await h.newTask(STAGING_ONLY);
    const response = send(task.token);
    const approval = await pending(task.taskId);
    expect(approval.actions).toMatchObject([{ environment: "staging", resource: "vol_a" }]);
    await inventory(PRODUCTION);
    const before = railway.hits.length;
    await decideApproval(h.t.db, (await makeUser(h.t.db, "approver")).actor, approval.id, "approve");
    const res = await response;
    expect(res.status, JSON.stringify(res.json)).toBe(403);
    expect(res.json).toMatchObject({ error: "actions_changed", kind: "denied" });
    expect(JSON.stringify(res.json)).toContain("railway staging");
    expect(railway.hits.length).toBe(before);
    const refusal = (await h.events()).find((e) => e.data.code === "actions_changed" && e.data.approvalId === approval.id);
    expect(refusal?.outcome).toBe("deny");
    expect(refusal?.data.actionsNow).toMatchObject([{ environment: "production" }]);
  });

  it("the same held request with the inventory unchanged (or changed elsewhere) is released once", async () => {
    await inventory(STAGING);
    const task = await h.newTask(STAGING_ONLY);
    const response = send(task.token);
    const approval = await pending(task.taskId);
    await inventory(`${STAGING}  - environment: production\n    service: railway\n    resources: [vol_other]\n`);
    const before = railway.hits.length;
    await decideApproval(h.t.db, (await makeUser(h.t.db, "approver")).actor, approval.id, "approve");
    expect((await response).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });

  it("a 202 grant approved for staging releases nothing once the resource is production, and stays unspent", async () => {
    await inventory(STAGING);
    const task = await h.newTask(EVERYWHERE);
    const held = await send(task.token, { prefer: "respond-async" });
    expect(held.status).toBe(202);
    const { approvalId } = held.json as { approvalId: string };
    await decideApproval(h.t.db, (await makeUser(h.t.db, "approver")).actor, approvalId, "approve");
    await inventory(PRODUCTION);
    const before = railway.hits.length;
    const retry = await send(task.token, { "bulkhead-approval": approvalId });
    expect(retry.status, JSON.stringify(retry.json)).toBe(403);
    expect(JSON.stringify(retry.json)).toContain("judged differently since it was approved");
    expect(railway.hits.length).toBe(before);
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: approvalId } })).status).toBe("approved");
    // Back to what it was approved for: the grant releases it, once.
    await inventory(STAGING);
    expect((await send(task.token, { "bulkhead-approval": approvalId })).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });

  it("a destination the service no longer allows (its internal address taken away while the request waited) is not dialled", async () => {
    await inventory(STAGING);
    const task = await h.newTask(STAGING_ONLY);
    const response = send(task.token);
    const approval = await pending(task.taskId);
    // Incident response: the service may no longer reach the internal address it was allowed.
    const closed = onLoopback("railway", railway.port, { scheme: "http", proxy: { internalAddresses: [] } });
    await saveCustomService(h.t.db, h.admin, stringify(closed));
    await h.sync();
    const before = railway.hits.length;
    await decideApproval(h.t.db, (await makeUser(h.t.db, "approver")).actor, approval.id, "approve");
    const res = await response;
    expect(res.status, JSON.stringify(res.json)).toBe(403);
    expect(res.json).toMatchObject({ error: "destination_forbidden", kind: "denied", auditEventId: expect.stringMatching(/:destination$/) });
    expect(railway.hits.length).toBe(before);
    const refusal = (await h.events()).find((e) => e.data.approvalId === approval.id && e.outcome === "deny");
    expect(refusal?.data.code).toBe((res.json as { error: string }).error);
    await saveCustomService(h.t.db, h.admin, stringify(onLoopback("railway", railway.port, { scheme: "http" })));
    await h.sync();
  });
});
