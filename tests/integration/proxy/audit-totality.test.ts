import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createLogger } from "@/lib/log";
import { AuditWriter, type AuditWriterOptions } from "@/proxy-worker/audit/writer";
import { DatabaseOutage } from "../audit/helpers";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const log = createLogger("audit-totality-test", "silent");

/**
 * Through the real proxy, with the worker's real audit writer (log + shipper): what an agent puts
 * in a request can never make the audit lose the decision, and when the audit cannot record, the
 * request is not forwarded.
 */
describe("every decision is recorded, whatever the agent sends, or the request is not forwarded", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  let api: Upstream;
  let token: string;
  let writer: AuditWriter;
  const dirs: string[] = [];
  const useWriter = async (options: Partial<AuditWriterOptions> = {}) => {
    await writer?.close(0);
    const walDir = options.walDir ?? mkdtempSync(path.join(tmpdir(), "bh-totality-"));
    dirs.push(walDir);
    writer = await AuditWriter.start({ databaseUrl: h.t.workerUrl, walDir, workerId: "totality", foldWindowMs: 0, log, ...options });
  };
  const graphql = (body: string) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json" }, body });
  const get = (p: string) => viaProxy(h.proxyPort, `http://api.test:${api.port}${p}`, { token });
  const event = async (id: string) => {
    await writer.flush();
    const rows = await h.t.db.auditEvent.findMany({ where: { data: { path: ["eventId"], equals: id } } });
    expect(rows).toHaveLength(1);
    return rows[0]!;
  };

  beforeAll(async () => {
    railway = await startHttpUpstream();
    // /slow answers after 600 ms: longer than the completion is waited for.
    api = await startHttpUpstream((hit, res) => setTimeout(() => res.end(JSON.stringify({ ok: true })), hit.url.startsWith("/slow") ? 600 : 0));
    h = await startProxyHarness({ audit: () => ({ record: async (e) => void (await writer.record(e)) }) });
    await useWriter();
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [api.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    // Unrestricted scope: the policy is what refuses here (layer 2's audit is under test).
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: railway\n    effects: [read]\n  - service: api\n    effects: [read]\n", { scope: "*:*:irreversible" }));
  });
  afterAll(async () => {
    await new DatabaseOutage(h.t.adminUrl).end();
    await h.close();
    await writer.close(0);
    await railway.close();
    await api.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  afterEach(() => new DatabaseOutage(h.t.adminUrl).end());

  const mutation = 'mutation Del($id: String!) { volumeDelete(volumeId: $id) }';
  it.each([
    ["a NUL in a GraphQL variable", { id: "vol_prod\u0000x" }, "nul"],
    ["a huge GraphQL variable", { id: `vol_${"x".repeat(200 * 1024)}` }, "truncated"],
  ])("records the refusal of a request carrying %s, marked as sanitised", async (_name, variables, what) => {
    const before = railway.hits.length;
    const r = await graphql(JSON.stringify({ query: mutation, variables, operationName: "Del" }));
    expect(r.status).toBe(403);
    expect(r.json?.error).toBe("policy_deny");
    expect(r.json?.auditWarning).toBeUndefined();
    expect(typeof r.json?.auditEventId).toBe("string");
    expect(railway.hits.length).toBe(before);
    const stored = await event(String(r.json!.auditEventId));
    expect(stored).toMatchObject({ type: "proxy.decision", outcome: "deny" });
    const data = stored.data as { sanitised?: { changes: Array<{ path: string; what: string }> }; actions?: unknown };
    expect(data.sanitised?.changes.some((c) => c.what === what)).toBe(true);
    expect(JSON.stringify(data.actions)).toContain("volumeDelete");
  });

  it("records the refusal of a body carrying a lone surrogate, which the JSON reader refuses as ambiguous", async () => {
    const before = railway.hits.length;
    const r = await graphql(JSON.stringify({ query: mutation, variables: { id: "vol_prod\ud800" }, operationName: "Del" }));
    expect(r.status).toBe(400);
    expect(r.json?.auditWarning).toBeUndefined();
    expect(typeof r.json?.auditEventId).toBe("string");
    expect(railway.hits.length).toBe(before);
    expect(await event(String(r.json!.auditEventId))).toMatchObject({ outcome: "deny" });
  });

  it("records the refusal of a body the parser refuses whatever bytes it holds", async () => {
    const r = await graphql('{"query": "mutation { volumeDelete(volumeId: \\"a\\u0000\\") }", "variables": {"x": "\\udfff"}, "operationName": 7}');
    expect([400, 403]).toContain(r.status);
    expect(typeof r.json?.auditEventId).toBe("string");
    await event(String(r.json!.auditEventId));
  });

  it("folds the upstream's answer into the decision: one row per forwarded request", async () => {
    await useWriter({ foldWindowMs: 300 });
    const r = await get("/items/1");
    expect(r.status).toBe(200);
    const stored = await event(String(r.headers["x-bulkhead-event"]));
    expect(stored.type).toBe("proxy.decision");
    expect((stored.data as { completion?: unknown }).completion).toMatchObject({ outcome: "forwarded", upstreamStatus: 200, durationMs: expect.any(Number) });
    const completions = await h.t.db.auditEvent.count({ where: { type: "proxy.completed", data: { path: ["decisionEventId"], equals: String(r.headers["x-bulkhead-event"]) } } });
    expect(completions).toBe(0);
  });

  it("records a slow request's completion on its own, after a decision that was complete without it", async () => {
    await useWriter({ foldWindowMs: 100 });
    const r = await get("/slow/1");
    expect(r.status).toBe(200);
    const id = String(r.headers["x-bulkhead-event"]);
    const stored = await event(id);
    expect((stored.data as { completion?: unknown }).completion).toBeUndefined();
    const completion = await h.t.db.auditEvent.findFirst({ where: { type: "proxy.completed", data: { path: ["decisionEventId"], equals: id } } });
    expect(completion?.data).toMatchObject({ upstreamStatus: 200 });
    expect(completion!.seq! > stored.seq!).toBe(true);
  });

  it("refuses to forward (503) when the log's disk is full, and forwards again once there is room", async () => {
    const mnt = mkdtempSync(path.join(tmpdir(), "bh-totality-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", mnt]);
    try {
      await useWriter({ walDir: mnt });
      expect((await get("/items/2")).status).toBe(200);
      // Fill the disk: a file takes everything that is left.
      try {
        writeFileSync(path.join(mnt, "filler"), Buffer.alloc(256 * 1024));
      } catch {
        // ENOSPC once it is full: that was the point
      }
      // What still fits in the log's last page is written; then nothing is, and nothing is forwarded.
      const forwarded: string[] = [];
      let r = await get("/items/full-0");
      for (let n = 1; r.status === 200 && n < 500; n++) {
        forwarded.push(String(r.headers["x-bulkhead-event"]));
        const before = api.hits.length;
        r = await get(`/items/full-${n}`);
        if (r.status !== 200) expect(api.hits.length).toBe(before);
      }
      expect(r.status).toBe(503);
      expect(r.json?.error).toBe("audit_unavailable");
      rmSync(path.join(mnt, "filler"));
      const after = await get("/items/4");
      expect(after.status).toBe(200);
      // Every request forwarded before the disk filled up, and after, has its decision.
      for (const id of [...forwarded, String(after.headers["x-bulkhead-event"])]) await event(id);
    } finally {
      await writer.close(0);
      await useWriter();
      execFileSync("umount", [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it("refuses new requests (503 audit_backlog) while the unshipped log is over its hard limit, still records the refusals, and recovers", async () => {
    await useWriter({ segmentBytes: 4096, softLimitBytes: 8 * 1024, hardLimitBytes: 32 * 1024 });
    const outage = new DatabaseOutage(h.t.adminUrl);
    await outage.begin();
    let n = 0;
    let r = await get(`/items/${n++}`);
    while (r.status === 200 && n < 1_000) r = await get(`/items/${n++}`);
    expect(r.status).toBe(503);
    expect(r.json?.error).toBe("audit_backlog");
    expect(writer.stats().backlog).toBe("refusing");
    const before = api.hits.length;
    expect((await get("/items/x")).status).toBe(503);
    expect(api.hits.length).toBe(before);
    // A refusal the policy makes is still recorded.
    const denied = await viaProxy(h.proxyPort, `http://api.test:${api.port}/items/1`, { token, method: "DELETE" });
    expect(denied.status).toBe(403);
    expect(typeof denied.json?.auditEventId).toBe("string");
    await outage.end();
    await writer.flush();
    expect(writer.stats().backlog).toBe("ok");
    expect((await get("/items/again")).status).toBe(200);
    await event(String(denied.json!.auditEventId));
    expect(await verifyAuditChain(h.t.db, { checkpointKeys: [] })).toMatchObject({ ok: true });
  });
});
