import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordAuditEvent } from "@/lib/audit/record";
import { startSiemShipper } from "@/lib/audit/siem/shipper";
import { publishSiemStatus } from "@/lib/audit/siem/status";
import { httpTransport } from "@/lib/audit/siem/transport";
import { loadSiemConfig } from "@/lib/config/siem";
import { until } from "../audit/helpers";
import { prepareWorkerEnvironment, startWorkerProcess, stopWorkerProcess, type WorkerEnvironment } from "../../support/worker-process";
import { siemReceiver } from "./receiver";

/**
 * The real `bulkhead worker` process, configured as the launcher configures it (the SIEM URL and
 * data folder inherited), reports the stream that the launcher's shipper runs (here run in the
 * test, writing the same cursor and status files), on its own /metrics.
 */
describe("the worker process reports the SIEM lag", () => {
  let w: WorkerEnvironment;
  let child: ChildProcess | undefined;
  let r: Awaited<ReturnType<typeof siemReceiver>>;
  const dataDir = mkdtempSync(path.join(tmpdir(), "bh-siem-worker-"));

  beforeAll(async () => {
    r = await siemReceiver();
    w = await prepareWorkerEnvironment(1, { BULKHEAD_DATA_DIR: dataDir, BULKHEAD_SIEM_URL: r.url });
    child = await startWorkerProcess(w);
  });
  afterAll(async () => {
    await stopWorkerProcess(child);
    await r.close();
    await w.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("lag grows while the receiver is down and returns to 0 when it is back", async () => {
    const sink = `{sink="http://127.0.0.1:${r.port}"}`;
    const value = async (name: string) => {
      const text = await (await fetch(`http://127.0.0.1:${w.healthPort}/metrics`)).text();
      const m = new RegExp(`^${name}\\{sink="[^"]*"\\} (\\S+)$`, "m").exec(text);
      if (m) expect(text).toContain(`${name}${sink}`);
      return m ? Number(m[1]) : undefined;
    };
    const config = loadSiemConfig(dataDir, { BULKHEAD_SIEM_URL: r.url })!;
    const shipper = startSiemShipper({ db: w.t.db, transport: httpTransport(r.url, { timeoutMs: 2000 }), cursorFile: config.cursorFile, intervalMs: 20, maxBackoffMs: 100 });
    const stopStatus = publishSiemStatus(shipper, dataDir, 50);
    try {
      await until(async () => (await value("bulkhead_siem_lag_events")) === 0 && (await value("bulkhead_siem_up")) === 1, 20_000, "caught up");
      await r.down();
      for (let i = 0; i < 5; i++) await recordAuditEvent(w.t.db, { type: "agent.created", actor: { actorType: "system", actorId: "test" }, data: { i } });
      await until(async () => (await value("bulkhead_siem_lag_events")) === 5 && (await value("bulkhead_siem_up")) === 0, 20_000, "behind by 5");
      expect(await value("bulkhead_siem_lag_seconds")).toBeGreaterThan(0);
      await r.up();
      await until(async () => (await value("bulkhead_siem_lag_events")) === 0 && (await value("bulkhead_siem_up")) === 1, 20_000, "drained");
      expect(await value("bulkhead_siem_lag_seconds")).toBe(0);
      expect(await value("bulkhead_siem_configured")).toBe(1);
    } finally {
      await shipper.stop();
      await stopStatus();
    }
  });
});
