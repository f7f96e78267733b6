import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkpointVerificationKey } from "@/lib/audit/checkpoints";
import { verifyAuditChain } from "@/lib/audit/verify";
import { DatabaseOutage, until, withClient } from "../audit/helpers";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";
import { seedWorld, startWorkerProcess, stopWorkerProcess, workerEnv, type SeededWorld } from "../../support/worker-world";

/**
 * The real worker process (`bulkhead worker`) is SIGKILLed under load: once while PostgreSQL is
 * up and events are being shipped, once while it is away and events exist only in the log. The
 * next worker with the same identity ships what its predecessor logged, from the cursor. Every
 * decision the proxy acknowledged to a client (a 200 or a 403 with its event id) is then in the
 * database exactly once, and every request that reached the upstream has its decision.
 */
describe("SIGKILL under load: no acknowledged event is lost", () => {
  let t: TestDatabase;
  let up: Upstream;
  let world: SeededWorld;
  let env: NodeJS.ProcessEnv;
  let walDir: string;
  let worker: ChildProcess | null = null;

  beforeAll(async () => {
    up = await startHttpUpstream();
    t = await createTestDatabase();
    world = await seedWorld(t.db, up.port);
    walDir = mkdtempSync(path.join(tmpdir(), "bh-kill-"));
    env = await workerEnv(t.workerUrl, world, { BULKHEAD_AUDIT_WAL_DIR: walDir, BULKHEAD_WORKER_ID: "kill-test" });
  });
  afterAll(async () => {
    await new DatabaseOutage(t.adminUrl).end();
    if (worker) await stopWorkerProcess(worker, "SIGKILL");
    await t.drop();
    await up.close();
    rmSync(walDir, { recursive: true, force: true });
  });

  /** Eight clients in a loop until `stop` resolves; collects the acknowledged event ids. */
  async function load(acknowledged: string[], stop: Promise<unknown>): Promise<void> {
    let running = true;
    void stop.then(() => (running = false));
    let n = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running) {
          const i = n++;
          const method = i % 5 === 0 ? "DELETE" : "GET";
          const r = await viaProxy(Number(env.BULKHEAD_PROXY_PORT), `http://127.0.0.1:${up.port}/items?n=${i}`, { token: world.token, method }).catch(() => null);
          if (!r) continue;
          const id = r.status === 200 ? r.headers["x-bulkhead-event"] : r.json?.auditEventId;
          if ((r.status === 200 || r.status === 403) && typeof id === "string") acknowledged.push(id);
        }
      }),
    );
  }

  async function killUnderLoad(acknowledged: string[], enough: number): Promise<void> {
    const w = worker!;
    const exited = new Promise((r) => w.once("exit", r));
    const target = acknowledged.length + enough;
    const loading = load(acknowledged, exited);
    await until(() => acknowledged.length >= target, 60_000, "load through the worker");
    w.kill("SIGKILL");
    await loading;
    worker = null;
  }

  it("ships what killed workers logged and keeps everything they acknowledged", async () => {
    const acknowledged: string[] = [];
    worker = await startWorkerProcess(env);
    await killUnderLoad(acknowledged, 300);

    // The next one ships what is left, then PostgreSQL goes away and it is killed too.
    worker = await startWorkerProcess(env);
    const outage = new DatabaseOutage(t.adminUrl);
    await outage.begin();
    const before = acknowledged.length;
    await killUnderLoad(acknowledged, 300);
    expect(acknowledged.length).toBeGreaterThanOrEqual(before + 300);
    await outage.end();

    worker = await startWorkerProcess(env);
    const stored = async () =>
      withClient(t.url, async (c) =>
        (await c.query<{ id: string; n: number }>("SELECT data->>'eventId' AS id, count(*)::int AS n FROM audit_events WHERE data->>'eventId' = ANY($1::text[]) GROUP BY 1", [acknowledged])).rows,
      );
    await until(async () => (await stored()).length === new Set(acknowledged).size, 60_000, "every acknowledged event in PostgreSQL");
    expect((await stored()).every((r) => r.n === 1)).toBe(true);

    // Every request that reached the upstream has its allow decision.
    const decided = await withClient(t.url, async (c) =>
      (await c.query<{ url: string }>("SELECT data->>'url' AS url FROM audit_events WHERE type = 'proxy.decision' AND outcome = 'allow'")).rows.map((r) => new URL(r.url).searchParams.get("n")),
    );
    const reached = up.hits.map((h) => new URL(h.url, "http://x").searchParams.get("n"));
    expect(reached.filter((n) => !decided.includes(n))).toEqual([]);
    await stopWorkerProcess(worker);
    worker = null;
    const keys = [checkpointVerificationKey(world.keys.checkpointKey)];
    expect(await verifyAuditChain(t.db, { checkpointKeys: keys })).toMatchObject({ ok: true });
  }, 240_000);
});
