import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * A card approved is the request released. What a person reads on the card (method, URL,
 * actions, headers, body) and the digest the worker releases by are columns of one row, and the
 * worker's database role inserts approvals: whoever held that role could insert a card showing a
 * harmless read with the digest of a destructive request (copied from one a person had denied, or
 * computed: the digest's recipe is public). A person approved the read; the agent presented the
 * grant with the destructive request, and the worker released it. Now the worker that records a
 * hold seals the row (HMAC with a key derived from the worker's process key, which no database
 * role holds) over its id, task, agent, token, digest and everything the card shows, and a grant
 * whose row does not carry a valid seal releases nothing.
 */
describe("approvals are sealed by the worker that held the request", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  let token: string;
  const RAILWAY = "backboard.railway.com";
  const DELETE = { query: 'mutation { volumeDelete(volumeId: "vol_staging") }' };

  const send = (headers: Record<string, string> = {}) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(DELETE) });

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n"));
  });
  afterAll(async () => {
    await h?.close();
    await railway?.close();
  });

  it("a card forged with the worker's role (a harmless read, a denied request's digest) releases nothing when approved", async () => {
    const approver = await makeUser(h.t.db, "approver");
    // Without a seal, then with the denied row's own seal copied onto it.
    for (const copySeal of [false, true]) {
      const before = railway.hits.length;
      // The real request, held and denied: its row holds the digest.
      const held = await send({ prefer: "respond-async" });
      expect(held.status).toBe(202);
      const deniedId = String(held.json?.approvalId);
      await decideApproval(h.t.db, approver.actor, deniedId, "deny", "no deleting volumes");
      // The worker's role copies the digest onto a card that shows a read.
      const client = new pg.Client({ connectionString: h.t.workerUrl });
      await client.connect();
      let forgedId: string;
      try {
        const { rows } = await client.query<{ id: string }>(
          `INSERT INTO approvals (task_id, agent_id, jti, request_digest, method, url, actions, reason, expires_at, poll_mode, request_headers${copySeal ? ", seal" : ""})
           SELECT task_id, agent_id, jti, request_digest, 'POST', url, $2::jsonb, 'read action held for approval', now() + interval '1 hour', true, request_headers${copySeal ? ", seal" : ""}
             FROM approvals WHERE id = $1::uuid RETURNING id::text`,
          [deniedId, JSON.stringify([{ service: "railway", environment: "staging", resource: "vol_staging", operation: "volume", effect: "read" }])],
        );
        forgedId = rows[0]!.id;
      } finally {
        await client.end();
      }
      // A person reads a read, and approves it.
      await decideApproval(h.t.db, approver.actor, forgedId, "approve");
      const res = await send({ "bulkhead-approval": forgedId });
      expect(railway.hits.length, `the destructive request was released on the forged card (seal copied: ${copySeal})`).toBe(before);
      expect(res.status).toBe(403);
      expect(String(res.json?.reason)).toMatch(/not sealed by Bulkhead's proxy/);
      expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: forgedId } })).status).toBe("approved");
    }
  }, 30_000);

  it("a grant the worker held and sealed is released once, as before", async () => {
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const held = await send({ prefer: "respond-async" });
    const id = String(held.json?.approvalId);
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id } })).seal).toMatch(/^v1\.[0-9a-f]{64}$/);
    await decideApproval(h.t.db, approver.actor, id, "approve");
    expect((await send({ "bulkhead-approval": id })).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
    expect((await send({ "bulkhead-approval": id })).status).toBe(403);
  }, 20_000);
});
