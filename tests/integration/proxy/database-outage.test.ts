import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkpointVerificationKey } from "@/lib/audit/checkpoints";
import { verifyAuditChain } from "@/lib/audit/verify";
import { AuditWriter } from "@/proxy-worker/audit/writer";
import { viaProxy } from "../../support/proxy-client";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * PostgreSQL goes away under traffic: the worker keeps enforcing its last snapshot (allowed
 * requests pass, denied ones are still denied), decisions are durable in the local audit log as
 * always, and every event is in the database, in one valid chain, once it is back.
 */
describe("PostgreSQL stopped under traffic", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let writer: AuditWriter;
  let walDir: string;
  let admin: pg.Client;
  let dbName: string;

  beforeAll(async () => {
    up = await startHttpUpstream();
    walDir = mkdtempSync(path.join(tmpdir(), "bh-wal-"));
    h = await startProxyHarness({
      audit: (db) => {
        void db;
        return {
          record: async (e) => {
            await writer.record(e);
          },
        };
      },
      beforeStart: async (url) => {
        writer = await AuditWriter.start({ databaseUrl: url, walDir, workerId: "outage-test", statementTimeoutMs: 2000 });
      },
    });
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    dbName = new URL(h.t.url).pathname.slice(1);
    admin = new pg.Client({ connectionString: h.t.adminUrl.replace(`/${dbName}`, "/postgres") });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`).catch(() => undefined);
    await admin.end();
    await h.close();
    await writer.close();
    await up.close();
    rmSync(walDir, { recursive: true, force: true });
  });

  it("keeps enforcing, keeps logging the audit, and loses nothing", async () => {
    const { token } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n");
    const get = () => viaProxy(h.proxyPort, `http://api.test:${up.port}/items`, { token });
    const del = () => viaProxy(h.proxyPort, `http://api.test:${up.port}/items/1`, { token, method: "DELETE" });
    expect((await get()).status).toBe(200);

    // Take the database away for real: no new connections, existing ones cut.
    await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS false`);
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [dbName]);
    await h.core.policy.reload(); // fails: the snapshot stays
    expect(h.core.policy.status().stale).toBe(true);

    const hitsBefore = up.hits.length;
    const during: string[] = [];
    for (let i = 0; i < 10; i++) {
      const ok = await get();
      expect(ok.status).toBe(200);
      during.push(String(ok.headers["x-bulkhead-event"]));
      const denied = await del();
      expect(denied.status).toBe(403);
      during.push(String(denied.json?.auditEventId));
    }
    expect(up.hits.length - hitsBefore).toBe(10);
    expect(up.hits.slice(hitsBefore).every((x) => x.method === "GET")).toBe(true);
    expect(writer.stats()).toMatchObject({ connected: false, backlog: "ok" });
    expect(writer.stats().lagEvents).toBeGreaterThanOrEqual(20);
    expect(readdirSync(walDir).some((f) => f.endsWith(".wal"))).toBe(true);

    // The database returns: everything logged is shipped, in order, exactly once.
    await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`);
    const deadline = Date.now() + 15_000;
    let stored: string[] = [];
    for (;;) {
      const rows = await h.t.db.auditEvent.findMany({ where: { type: { startsWith: "proxy." } }, select: { data: true } }).catch(() => []);
      stored = rows.map((r) => String((r.data as { eventId?: string }).eventId));
      if (during.every((id) => stored.includes(id)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const id of during) expect(stored.filter((s) => s === id), id).toHaveLength(1);
    await h.core.policy.reload();
    expect(h.core.policy.status().stale).toBe(false);
    const chain = await verifyAuditChain(h.t.db, { checkpointKeys: [checkpointVerificationKey(h.keys.checkpointKey)] });
    expect(chain).toMatchObject({ ok: true });
  }, 60_000);
});
