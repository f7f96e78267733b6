import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { searchAuditEvents } from "@/lib/audit/query";
import { createLogger } from "@/lib/log";
import { AuditWriter } from "@/proxy-worker/audit/writer";
import { startSqlEndpoint } from "../../support/fake-services";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const log = createLogger("audit-long-requests-test", "silent");

/**
 * Through the real proxy and the worker's real audit writer (log, shipper, PostgreSQL): an agent
 * pads one SQL request with ~2,000 harmless reads around the statement that matters. The decision
 * event keeps every action, and a search for the table finds it, forwarded or refused.
 */
describe("a request padded with harmless actions is recorded and found whole", () => {
  let h: ProxyHarness;
  let sql: Upstream & { statements: string[] };
  let railway: Upstream;
  let token: string;
  let writer: AuditWriter;
  let walDir: string;

  const query = (text: string) =>
    viaProxy(h.proxyPort, `http://db.test:${sql.port}/sql`, { token, headers: { "content-type": "application/json" }, body: JSON.stringify({ query: text }) });
  // 499 statements of four table reads each: 1,996 read actions, then the one that matters.
  const padded = (last: string) => [...Array.from({ length: 499 }, (_, i) => `select * from t${i} join u${i} on true join v${i} on true join w${i} on true`), last].join(";\n");

  beforeAll(async () => {
    sql = await startSqlEndpoint();
    railway = await startHttpUpstream();
    h = await startProxyHarness({ audit: () => ({ record: async (e) => void (await writer.record(e)) }) });
    walDir = mkdtempSync(path.join(tmpdir(), "bh-long-requests-"));
    writer = await AuditWriter.start({ databaseUrl: h.t.workerUrl, walDir, workerId: "long-requests", foldWindowMs: 0, log });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.addService({ id: "warehouse", hosts: ["db.test"], scheme: "http", ports: [sql.port], protocol: "sql-http", sql: { paths: ["/sql"], queryField: "query", database: "warehouse" }, proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: warehouse\n    effects: [read, write]\n  - service: railway\n    effects: [read]\n", { scope: "*:*:irreversible" }));
  });
  afterAll(async () => {
    await h.close();
    await writer.close(0);
    await sql.close();
    await railway.close();
    rmSync(walDir, { recursive: true, force: true });
  });

  it("forwarded: the write after 1,996 reads is in the decision event and found by a search for its table", async () => {
    const r = await query(padded("update ledger_hidden set paid = true where id = 1"));
    expect(r.status).toBe(200);
    await writer.flush();
    const found = await searchAuditEvents(h.t.db, { q: "ledger_hidden", type: "proxy.decision", limit: 50 });
    expect(found.events).toHaveLength(1);
    const e = found.events[0]!;
    expect(e.outcome).toBe("allow");
    expect(e.actions).toHaveLength(1_997);
    expect(e.actions[1_996]).toMatchObject({ operation: "UPDATE", resource: expect.stringContaining("ledger_hidden"), effect: "write" });
  });

  it("refused: the DROP after 1,996 reads is in the refusal event and found by a search for its table", async () => {
    const r = await query(padded("drop table ledger_dropped"));
    expect(r.status).toBe(403);
    await writer.flush();
    const found = await searchAuditEvents(h.t.db, { q: "ledger_dropped", limit: 50 });
    expect(found.events.map((e) => e.outcome)).toEqual(["deny"]);
    expect(found.events[0]!.actions).toHaveLength(1_997);
    expect(sql.statements.some((s) => s.includes("ledger_dropped"))).toBe(false);
  });

  it("more actions than one event records: refused before it is decided, nothing forwarded, the refusal says how many", async () => {
    // A GraphQL batch of 50 documents of 41 reads each: 2,050 actions, each within every GraphQL limit.
    const doc = (d: number) => ({ query: `query { ${Array.from({ length: 41 }, (_, i) => `environment(id: "env_${d}_${i}") { id }`).join(" ")} }` });
    const r = await viaProxy(h.proxyPort, `http://backboard.railway.com:${railway.port}/graphql/v2`, {
      token,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(Array.from({ length: 50 }, (_, d) => doc(d))),
    });
    expect(r.status, JSON.stringify(r.json)).toBe(400);
    expect(r.json?.error).toBe("too_many_actions");
    expect(railway.hits).toHaveLength(0);
    await writer.flush();
    const found = await searchAuditEvents(h.t.db, { q: "too_many_actions", limit: 50 });
    expect(found.events).toHaveLength(1);
    const e = found.events[0]!;
    expect(e.outcome).toBe("deny");
    expect((e.data as { actionCount?: number }).actionCount).toBe(2_050);
    expect(e.actions.length + e.actionsLeftOut).toBe(2_050);
    expect(e.actionsLeftOut).toBe(2_050 - e.actions.length);
  });
});
