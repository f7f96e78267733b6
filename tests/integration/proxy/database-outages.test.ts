import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkpointVerificationKey } from "@/lib/audit/checkpoints";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createPrismaClient } from "@/lib/db/client";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { startOwnPostgres, type OwnPostgres } from "../../support/own-postgres";
import { viaProxy, type ProxyResponse } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";
import { readyz, seedWorld, startWorkerProcess, stopWorkerProcess, workerEnv, type SeededWorld } from "../../support/worker-world";
import { until } from "../audit/helpers";

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The real worker (`bulkhead worker`) in front of a real upstream, with a PostgreSQL server of
 * this file's own that the test stops, starts and freezes (SIGSTOP of every server process) while
 * requests flow. Afterwards every answered request is reconciled against the database: a request
 * that reached the upstream has its decision event, exactly once, and the chain verifies.
 */
describe("PostgreSQL stopped and frozen under load", () => {
  let pgs: OwnPostgres;
  let up: Upstream;
  let world: SeededWorld;
  let env: NodeJS.ProcessEnv;
  let worker: ChildProcess;
  let walDir: string;

  beforeAll(async () => {
    pgs = await startOwnPostgres();
    up = await startHttpUpstream();
    const db = createPrismaClient(pgs.dashboardUrl, 2);
    try {
      world = await seedWorld(db, up.port);
    } finally {
      await db.$disconnect();
    }
    walDir = mkdtempSync(path.join(tmpdir(), "bh-outages-"));
    // Both names: the directory variable of the spool this log replaced, and the log's own.
    env = await workerEnv(pgs.workerUrl, world, { BULKHEAD_AUDIT_WAL_DIR: walDir, BULKHEAD_AUDIT_SPOOL_DIR: walDir, BULKHEAD_WORKER_ID: "outages" });
    worker = await startWorkerProcess(env);
  });

  afterAll(async () => {
    if (worker) await stopWorkerProcess(worker);
    await up?.close();
    await pgs?.destroy();
    rmSync(walDir, { recursive: true, force: true });
  });

  const get = (n: number, timeoutMs = 20_000) =>
    Promise.race([
      viaProxy(Number(env.BULKHEAD_PROXY_PORT), `http://127.0.0.1:${up.port}/items?n=${n}`, { token: world.token }),
      pause(timeoutMs).then(() => null),
    ]).catch(() => null);

  it("reports a frozen database within two seconds and keeps answering from its last snapshot", async () => {
    await until(async () => (await readyz(env))?.status === "ready", 10_000, "ready before the freeze");
    pgs.freeze();
    let frozenFor = 0;
    let during: ProxyResponse | null = null;
    try {
      const frozenAt = Date.now();
      await until(async () => {
        const r = await readyz(env, 500);
        return r?.status === "degraded" && r.policy.stale === true;
      }, 5_000, "readiness to say degraded and the policy stale");
      frozenFor = Date.now() - frozenAt;
      // The audit's commit point is local: a frozen database does not hold the request up.
      const sent = Date.now();
      during = await get(-1, 3_000);
      expect(Date.now() - sent).toBeLessThan(2_000);
    } finally {
      pgs.thaw();
    }
    expect(frozenFor).toBeLessThan(2_500);
    expect(during?.status).toBe(200);
    await until(async () => {
      const r = await readyz(env);
      return r?.status === "ready" && r.policy.stale === false;
    }, 15_000, "ready again after the thaw");
  });

  // A revocation or a task's end committed just before the database stopped answering is in no
  // snapshot the worker holds: the last one is enforced for BULKHEAD_POLICY_STALE_LIMIT_SECONDS
  // (5 here) only, then every request is refused until the database answers again.
  it("refuses every request once its snapshot has been stale for longer than the limit, and answers again after the thaw", async () => {
    await until(async () => (await readyz(env))?.status === "ready", 10_000, "ready before the freeze");
    const before = up.hits.length;
    pgs.freeze();
    let late: ProxyResponse | null = null;
    try {
      await until(async () => (await readyz(env, 500))?.policy.stale === true, 5_000, "the policy stale");
      await pause(5_500);
      late = await get(-2, 3_000);
    } finally {
      pgs.thaw();
    }
    expect([late?.status, late?.json?.error]).toEqual([503, "policy_stale"]);
    expect(up.hits.length).toBe(before);
    await until(async () => (await readyz(env))?.policy.stale === false, 15_000, "fresh again after the thaw");
    // Requests are refused until PostgreSQL has confirmed the snapshot since it came back: the
    // probe sent as the reload finishes does so within moments.
    await until(async () => (await get(-3, 5_000))?.status === 200, 3_000, "requests forwarded again after the thaw");
  }, 40_000);

  // A worker stalled (a paused VM, SIGSTOP) decided, when it resumed, the requests that waited
  // before it read the notifications that waited: a token revoked meanwhile was forwarded past.
  // Now such a request is refused, as stale (503) or, when the worker caught up first, as revoked.
  it("does not forward a request that waited while the worker was stalled with a token revoked meanwhile", async () => {
    await until(async () => (await readyz(env))?.status === "ready", 10_000, "ready before the stall");
    const db = createPrismaClient(pgs.dashboardUrl, 2);
    let token: string;
    let jti: string;
    try {
      const issued = await issueTaskToken(db, { kind: "system", label: "test" }, world.keys.dashboardKey, { issuer: "bulkhead", audience: "bulkhead-proxy" }, world.taskId);
      token = issued.token;
      jti = issued.jti;
    } finally {
      await db.$disconnect();
    }
    await until(async () => (await viaProxy(Number(env.BULKHEAD_PROXY_PORT), `http://127.0.0.1:${up.port}/items?n=-4`, { token }).catch(() => null))?.status === 200, 10_000, "the new token to work");
    const before = up.hits.length;
    worker.kill("SIGSTOP");
    // Many requests wait, each on a connection of its own: the stalled worker decided them in
    // the order they come, and before the notification that waited with them.
    let waited: Promise<Array<ProxyResponse | null>>;
    try {
      waited = Promise.all(Array.from({ length: 20 }, (_, i) => Promise.race([viaProxy(Number(env.BULKHEAD_PROXY_PORT), `http://127.0.0.1:${up.port}/items?n=-${100 + i}`, { token }), pause(20_000).then(() => null)]).catch(() => null)));
      await pause(500);
      const admin = new pg.Client({ connectionString: pgs.url });
      await admin.connect();
      try {
        await admin.query("UPDATE issued_tokens SET revoked_at = now() WHERE jti = $1", [jti]);
      } finally {
        await admin.end();
      }
      await pause(5_500);
    } finally {
      worker.kill("SIGCONT");
    }
    const answers = await waited;
    // Nothing reached the upstream: each was refused as stale (503) or, decided after the worker
    // caught up, as revoked (407).
    expect(up.hits.length, JSON.stringify(answers.map((a) => [a?.status, a?.json?.error]))).toBe(before);
    for (const answer of answers) expect([503, 407], JSON.stringify([answer?.status, answer?.json])).toContain(answer?.status);
    await until(async () => (await get(-6, 3_000))?.status === 200, 10_000, "answering again after the stall");
  }, 40_000);

  it("loses no decision of an answered request through six outages and freezes under load", async () => {
    const answers: Array<{ n: number; method: string; r: ProxyResponse | null }> = [];
    const inFlight = new Set<Promise<void>>();
    let n = 0;
    let sending = true;
    // ~150 requests a second, each on a fresh connection; every tenth a DELETE the policy denies.
    const tick = setInterval(() => {
      if (!sending) return;
      for (let k = 0; k < 3; k++) {
        const i = n++;
        const method = i % 10 === 0 ? "DELETE" : "GET";
        const p = (
          method === "GET"
            ? get(i)
            : viaProxy(Number(env.BULKHEAD_PROXY_PORT), `http://127.0.0.1:${up.port}/items?n=${i}`, { token: world.token, method }).catch(() => null)
        ).then((r) => {
          answers.push({ n: i, method, r });
        });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
    }, 20);
    try {
      for (const kind of ["stop", "freeze", "stop", "freeze", "stop", "freeze"] as const) {
        await pause(700);
        if (kind === "stop") {
          await pgs.stop();
          await pause(1_200);
          await pgs.start();
        } else {
          pgs.freeze();
          await pause(1_200);
          pgs.thaw();
        }
      }
      await pause(700);
    } finally {
      sending = false;
      clearInterval(tick);
      pgs.thaw();
      await pgs.start();
    }
    await Promise.all([...inFlight]);

    const ok = answers.filter((a) => a.r?.status === 200);
    const denied = answers.filter((a) => a.r?.status === 403);
    expect(ok.length).toBeGreaterThan(500);
    expect(denied.length).toBeGreaterThan(50);
    // Nothing the policy denies ever reached the upstream.
    expect(up.hits.every((h) => h.method === "GET")).toBe(true);

    const pool = new pg.Pool({ connectionString: pgs.url, max: 2 });
    try {
      const load = async () =>
        (
          await pool.query<{ id: string; type: string; outcome: string | null; url: string | null }>(
            "SELECT data->>'eventId' AS id, type, outcome, data->>'url' AS url FROM audit_events WHERE type LIKE 'proxy.%' ORDER BY seq",
          )
        ).rows;
      const expected = [...ok.map((a) => String(a.r!.headers["x-bulkhead-event"])), ...denied.map((a) => String(a.r!.json?.auditEventId))];
      let rows = await load();
      await until(async () => {
        rows = await load();
        const stored = new Set(rows.map((r) => r.id));
        return expected.every((id) => stored.has(id));
      }, 60_000, "every answered request's event in PostgreSQL");

      const byId = new Map<string, number>();
      for (const r of rows) byId.set(r.id, (byId.get(r.id) ?? 0) + 1);
      expect([...byId].filter(([, count]) => count > 1)).toEqual([]);

      // Every request that reached the upstream has its allow decision, exactly once.
      const decisions = new Map<string, number>();
      for (const r of rows) {
        if (r.type !== "proxy.decision" || r.outcome !== "allow") continue;
        const m = /[?&]n=(-?\d+)$/.exec(r.url ?? "");
        if (m) decisions.set(m[1]!, (decisions.get(m[1]!) ?? 0) + 1);
      }
      const reached = up.hits.map((h) => /[?&]n=(-?\d+)$/.exec(h.url)?.[1]).filter((x): x is string => x !== undefined);
      const missing = reached.filter((k) => decisions.get(k) !== 1);
      expect(missing).toEqual([]);
      // And every 200 and 403 the client saw carries the id of a stored event.
      for (const a of ok) expect(rows.find((r) => r.id === a.r!.headers["x-bulkhead-event"])?.url).toMatch(new RegExp(`[?&]n=${a.n}$`));
      for (const a of denied) expect(rows.find((r) => r.id === a.r!.json?.auditEventId)?.outcome).toBe("deny");

      const keys = [checkpointVerificationKey(world.keys.checkpointKey)];
      expect(await verifyAuditChain(pool, { checkpointKeys: keys })).toMatchObject({ ok: true });
    } finally {
      await pool.end();
    }
  }, 180_000);
});
