import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { identity, onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
const DELETE = JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' });

/**
 * Replaying an approved 202-and-poll grant: the approval is bound to the token that made the
 * request (a second token of the same task, minted or stolen meanwhile, cannot spend it), and a
 * burst of identical retries with the right token releases the request exactly once.
 */
describe("an approved grant replayed", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  const send = (token: string, headers: Record<string, string> = {}) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json", ...headers }, body: DELETE });

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

  const approvedGrant = async () => {
    const task = await h.newTask(POLICY);
    const held = await send(task.token, { prefer: "respond-async" });
    expect(held.status).toBe(202);
    const approvalId = (held.json as { approvalId: string }).approvalId;
    await decideApproval(h.t.db, (await makeUser(h.t.db, "approver")).actor, approvalId, "approve");
    return { ...task, approvalId };
  };

  it("with another token of the same task: refused, and the grant is still there for the token that made the request", async () => {
    const { taskId, token, approvalId } = await approvedGrant();
    const second = (await issueTaskToken(h.t.db, h.admin, h.keys.dashboardKey, identity, taskId)).token;
    const before = railway.hits.length;
    const stolen = await send(second, { "bulkhead-approval": approvalId });
    expect(stolen.status).toBe(403);
    expect(String(stolen.json?.reason)).toMatch(/another task token/);
    expect(railway.hits.length).toBe(before);
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: approvalId } })).status).toBe("approved");
    expect((await send(token, { "bulkhead-approval": approvalId })).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });

  it("eight identical retries at once: one is forwarded, the others are refused", async () => {
    const { token, approvalId } = await approvedGrant();
    const before = railway.hits.length;
    const answers = await Promise.all(Array.from({ length: 8 }, () => send(token, { "bulkhead-approval": approvalId })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 403, 403, 403, 403, 403, 403, 403]);
    expect(railway.hits.length).toBe(before + 1);
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: approvalId } })).status).toBe("consumed");
    const forwarded = (await h.events()).filter((e) => e.type === "proxy.approved" && e.data.approvalId === approvalId);
    expect(forwarded).toHaveLength(1);
  });
  it("with a header changed or added (method override, content type, a conditional): refused, and the grant stays for the exact request", async () => {
    const { token, approvalId } = await approvedGrant();
    const before = railway.hits.length;
    const variants: Record<string, string>[] = [{ "x-http-method-override": "DELETE" }, { "content-type": "application/x-www-form-urlencoded" }, { "if-match": "*" }];
    for (const headers of variants) {
      const changed = await send(token, { "bulkhead-approval": approvalId, ...headers });
      // 403 (another digest), or 400 where the changed header makes the body mean something else.
      expect([400, 403], JSON.stringify(headers)).toContain(changed.status);
    }
    expect(railway.hits.length).toBe(before);
    expect((await send(token, { "bulkhead-approval": approvalId })).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });
});
