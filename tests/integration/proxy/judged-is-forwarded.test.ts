import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
/** Reads are allowed; every irreversible action is held for a person (202-and-poll here). */
const POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
const READ_ONLY = "unlisted: deny\nrules:\n  - service: railway\n    effects: [read]\n";
const DELETE = JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' });
/**
 * One body, two readings: as a form it carries `query={me{id}}` (a read); as JSON its `query`
 * is a mutation that deletes a volume. Which one the upstream runs depends on Content-Type.
 */
const TWO_WAY = `{"a":"&query=%7Bme%7Bid%7D%7D&","query":"mutation{volumeDelete(volumeId:\\"vol_staging\\")}"}`;

/**
 * What Bulkhead judged is what reaches the upstream: no header the classifier read can be changed
 * or dropped between the decision (or a person's approval) and the forwarded request.
 */
describe("the request judged is the request forwarded", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  const url = () => `http://${RAILWAY}:${railway.port}/graphql/v2`;

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

  it("a header the agent lists in Connection is judged absent, as the upstream gets it: it cannot turn a mutation into a read", async () => {
    const { token } = await h.newTask(READ_ONLY, { scope: "railway:*:read" });
    const before = railway.hits.length;
    // The control: read as a form, the body is a read, and the upstream gets that Content-Type.
    const asForm = await viaProxy(h.proxyPort, url(), { token, headers: { "content-type": "application/x-www-form-urlencoded" }, body: TWO_WAY });
    expect(asForm.status, asForm.text).toBe(200);
    expect(railway.hits.at(-1)!.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    // Listing Content-Type in Connection removes it before forwarding: the upstream would get a
    // body without a type, which many servers read as JSON (the mutation). It is judged so.
    for (const connection of ["content-type, close", "Content-Type", "close,  CONTENT-TYPE"]) {
      const stripped = await viaProxy(h.proxyPort, url(), { token, headers: { "content-type": "application/x-www-form-urlencoded", connection }, body: TWO_WAY });
      expect(stripped.status, connection).not.toBe(200);
      expect([400, 403]).toContain(stripped.status);
    }
    expect(railway.hits.length).toBe(before + 1);
  });

  it("a header listed in Connection is never forwarded, and what it would have meant is not judged either", async () => {
    const { token } = await h.newTask(READ_ONLY, { scope: "railway:*:read" });
    const before = railway.hits.length;
    const r = await viaProxy(h.proxyPort, url(), { token, headers: { "content-type": "application/json", "x-trace-hop": "1", connection: "x-trace-hop, close" }, body: JSON.stringify({ query: "{ me { id } }" }) });
    expect(r.status, r.text).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
    expect(railway.hits.at(-1)!.headers["x-trace-hop"]).toBeUndefined();
  });

  describe("an approval is bound to the headers the request is forwarded with", () => {
    const held = async (token: string, headers: Record<string, string>) => {
      const r = await viaProxy(h.proxyPort, url(), { token, headers: { prefer: "respond-async", ...headers }, body: DELETE });
      expect(r.status).toBe(202);
      return (r.json as { approvalId: string }).approvalId;
    };

    it("a grant redeemed with another Content-Type, a method override or any other header added or changed releases nothing, and is not used up", async () => {
      const { token } = await h.newTask(POLICY);
      const approver = await makeUser(h.t.db, "approver");
      const base = { "content-type": "application/json", "x-client": "agent-1" };
      const approvalId = await held(token, base);
      await decideApproval(h.t.db, approver.actor, approvalId, "approve");
      const before = railway.hits.length;
      // Refused by the grant's digest (the request still classifies as the same held mutation).
      const changed: Record<string, string>[] = [
        { ...base, "content-type": "application/json; charset=utf-8" },
        { ...base, "x-client": "agent-2" },
        { "content-type": "application/json" },
        { ...base, "if-match": "*" },
        { ...base, "x-http-method-override": "PATCH" },
      ];
      for (const headers of changed) {
        const r = await viaProxy(h.proxyPort, url(), { token, headers: { ...headers, "bulkhead-approval": approvalId }, body: DELETE });
        expect(r.status, `${JSON.stringify(headers)}: ${r.text}`).toBe(403);
        expect(String(r.json?.reason)).toMatch(/different request/);
      }
      // Read another way, the body is no longer that request at all: refused before the grant is looked at.
      const form = await viaProxy(h.proxyPort, url(), { token, headers: { ...base, "content-type": "application/x-www-form-urlencoded", "bulkhead-approval": approvalId }, body: DELETE });
      expect([400, 403]).toContain(form.status);
      expect(railway.hits.length).toBe(before);
      // The same request, with only tracing headers new and without the async preference: released once.
      const ok = await viaProxy(h.proxyPort, url(), { token, headers: { ...base, traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-request-id": "retry-2", "bulkhead-approval": approvalId }, body: DELETE });
      expect(ok.status).toBe(200);
      expect(railway.hits.length).toBe(before + 1);
      expect(railway.hits.at(-1)!.headers["x-client"]).toBe("agent-1");
      expect(railway.hits.at(-1)!.headers["content-type"]).toBe("application/json");
    });

    it("header names are compared without regard to case or order", async () => {
      const { token } = await h.newTask(POLICY);
      const approver = await makeUser(h.t.db, "approver");
      const approvalId = await held(token, { "Content-Type": "application/json", "X-A": "1", "X-B": "2" });
      await decideApproval(h.t.db, approver.actor, approvalId, "approve");
      const r = await viaProxy(h.proxyPort, url(), { token, headers: { "x-b": "2", "content-type": "application/json", "x-a": "1", "bulkhead-approval": approvalId }, body: DELETE });
      expect(r.status).toBe(200);
    });
  });
});
