import { mkdtemp, rm } from "node:fs/promises";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordAuditEvent } from "@/lib/audit/record";
import { startSiemShipper } from "@/lib/audit/siem/shipper";
import { publishSiemStatus } from "@/lib/audit/siem/status";
import { httpTransport } from "@/lib/audit/siem/transport";
import { loadSiemConfig } from "@/lib/config/siem";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { watchSiem } from "@/proxy-worker/audit/siem-metrics";
import { createHealthServer } from "@/proxy-worker/health";
import { createMetrics } from "@/proxy-worker/metrics";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { until } from "../audit/helpers";
import { siemReceiver } from "./receiver";

/** The worker's real health server with its metrics, as a scrape sees it. */
async function workerMetrics(db: Db, dataDir: string, env: Record<string, string>) {
  const metrics = createMetrics();
  watchSiem(metrics, { db, dataDir, config: loadSiemConfig(dataDir, env) });
  const server: http.Server = createHealthServer({ startedAt: new Date(), metrics: metrics.registry, readiness: () => ({ ready: true, status: "ready" }) });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  return {
    /** Every bulkhead_siem_* sample: `name{labels}` -> value. */
    async scrape(): Promise<Map<string, number>> {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const samples = new Map<string, number>();
      for (const line of (await res.text()).split("\n")) {
        const m = /^(bulkhead_siem_\w+(?:\{[^}]*\})?) (\S+)$/.exec(line);
        if (m) samples.set(m[1]!, Number(m[2]));
      }
      return samples;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("SIEM lag in the worker's Prometheus metrics", () => {
  let t: TestDatabase;
  let workerDb: Db;
  let dir: string;
  const record = async (n: number) => {
    for (let i = 0; i < n; i++) await recordAuditEvent(t.db, { type: "agent.created", actor: { actorType: "system", actorId: "test" }, data: { i } });
  };

  beforeAll(async () => {
    t = await createTestDatabase();
    // The worker reads the lag with its own role, not the dashboard's.
    workerDb = createPrismaClient(t.workerUrl, 2);
    dir = await mkdtemp(path.join(tmpdir(), "bh-siem-metrics-"));
  });
  afterAll(async () => {
    await workerDb.$disconnect();
    await rm(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("without a SIEM says so and reports no lag", async () => {
    await record(3);
    const m = await workerMetrics(workerDb, dir, {});
    const samples = await m.scrape();
    expect([...samples]).toEqual([["bulkhead_siem_configured", 0]]);
    await m.close();
  });

  it("shows the lag growing while the receiver is down and returning to 0 when it is back", async () => {
    const r = await siemReceiver();
    const dataDir = await mkdtemp(path.join(dir, "data-"));
    // The path and query of an intake URL may carry a token: the label is the origin only.
    const env = { BULKHEAD_SIEM_URL: `${r.url}?token=intake-secret` };
    const config = loadSiemConfig(dataDir, env)!;
    const shipper = startSiemShipper({ db: t.db, transport: httpTransport(env.BULKHEAD_SIEM_URL, { timeoutMs: 2000 }), cursorFile: config.cursorFile, batchSize: 5, intervalMs: 20, maxBackoffMs: 100 });
    const stopStatus = publishSiemStatus(shipper, dataDir, 50);
    const m = await workerMetrics(workerDb, dataDir, env);
    const sink = `{sink="http://127.0.0.1:${r.port}"}`;
    const value = async (name: string) => (await m.scrape()).get(`${name}${sink}`);

    await until(async () => (await value("bulkhead_siem_lag_events")) === 0 && (await value("bulkhead_siem_up")) === 1, 10_000, "caught up");
    const caughtUp = await m.scrape();
    expect(caughtUp.get(`bulkhead_siem_configured${sink}`)).toBe(1);
    expect(caughtUp.get(`bulkhead_siem_lag_seconds${sink}`)).toBe(0);
    expect(caughtUp.get(`bulkhead_siem_cursor_seq${sink}`)).toBe(3);
    const firstSuccess = caughtUp.get(`bulkhead_siem_last_success_timestamp_seconds${sink}`)!;
    expect(Math.abs(firstSuccess - Date.now() / 1000)).toBeLessThan(30);
    expect([...caughtUp.keys()].join("\n")).not.toContain("intake-secret");

    await r.down();
    await record(4);
    await until(async () => (await value("bulkhead_siem_up")) === 0, 10_000, "the failure reported");
    const behind = await m.scrape();
    expect(behind.get(`bulkhead_siem_lag_events${sink}`)).toBe(4);
    expect(behind.get(`bulkhead_siem_cursor_seq${sink}`)).toBe(3);
    expect(behind.get(`bulkhead_siem_last_success_timestamp_seconds${sink}`)).toBe(firstSuccess);
    const lagThen = behind.get(`bulkhead_siem_lag_seconds${sink}`)!;
    expect(lagThen).toBeGreaterThan(0);
    await record(3);
    // Computed at scrape time: it grows with every new event and with the oldest one's age.
    await until(async () => ((await value("bulkhead_siem_lag_seconds")) ?? 0) > lagThen, 10_000, "the lag in seconds growing");
    expect(await value("bulkhead_siem_lag_events")).toBe(7);

    await r.up();
    await until(async () => (await value("bulkhead_siem_lag_events")) === 0 && (await value("bulkhead_siem_up")) === 1, 10_000, "drained after the receiver came back");
    const back = await m.scrape();
    expect(back.get(`bulkhead_siem_lag_seconds${sink}`)).toBe(0);
    expect(back.get(`bulkhead_siem_cursor_seq${sink}`)).toBe(10);
    expect(back.get(`bulkhead_siem_last_success_timestamp_seconds${sink}`)).toBeGreaterThan(firstSuccess);
    expect(r.seqs).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);

    // The shipper stops (the launcher is gone): the lag is still measured, and up says nothing ships.
    await shipper.stop();
    await stopStatus();
    await record(2);
    const stopped = await m.scrape();
    expect(stopped.get(`bulkhead_siem_lag_events${sink}`)).toBe(2);
    expect(stopped.get(`bulkhead_siem_up${sink}`)).toBe(0);
    await m.close();
    await r.close();
  });

  it("still answers the scrape while PostgreSQL is away, leaving the lag out rather than guessing it", async () => {
    const dataDir = await mkdtemp(path.join(dir, "away-"));
    const env = { BULKHEAD_SIEM_URL: "syslog+tcp://127.0.0.1:6514" };
    const refusing = new URL(t.workerUrl);
    refusing.port = "1"; // nothing listens there: every query fails to connect
    const away = createPrismaClient(refusing.toString(), 1);
    const m = await workerMetrics(away, dataDir, env);
    const samples = await m.scrape();
    const sink = `{sink="syslog+tcp://127.0.0.1:6514"}`;
    expect(samples.get(`bulkhead_siem_configured${sink}`)).toBe(1);
    expect(samples.get(`bulkhead_siem_up${sink}`)).toBe(0); // no shipper has written a status here
    expect(samples.get(`bulkhead_siem_cursor_seq${sink}`)).toBe(0);
    expect(samples.has(`bulkhead_siem_lag_events${sink}`)).toBe(false);
    expect(samples.has(`bulkhead_siem_lag_seconds${sink}`)).toBe(false);
    await m.close();
    await away.$disconnect();
  });
});
