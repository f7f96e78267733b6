/**
 * The SIEM stream's lag on the worker's /metrics. The shipper runs in the launcher, which has no
 * metrics endpoint of its own; rather than open another port, the worker (already scraped, on its
 * loopback health port) reports it, computed at scrape time from what the shipper leaves on disk
 * and from the database head:
 *   - the cursor file: the last seq the SIEM accepted and when (written after every accepted batch);
 *   - the status file: the shipper's last error and when it last wrote (lib/audit/siem/status.ts);
 *   - PostgreSQL: the chain's head and the age of the oldest event after the cursor.
 * Every worker slot reports the same figures; aggregate with max(). Without BULKHEAD_SIEM_URL only
 * `bulkhead_siem_configured 0` is reported, never a lag.
 */
import client from "prom-client";
import { measureSiemLag, readSiemCursor, siemSinkLabel, type SiemCursor, type SiemLag } from "@/lib/audit/siem/lag";
import { readSiemStatus } from "@/lib/audit/siem/status";
import type { AuditDb } from "@/lib/audit/sql";
import type { loadSiemConfig } from "@/lib/config/siem";
import type { Metrics } from "../metrics";

/** The launcher rewrites the status file every 5 s; older than this, no shipper is running. */
export const SIEM_STATUS_STALE_MS = 30_000;
const QUERY_TIMEOUT_MS = 2_000;

interface Reading {
  cursor: SiemCursor | null;
  lag: SiemLag | null;
  up: boolean;
}

export function watchSiem(metrics: Metrics, o: { db: AuditDb; dataDir: string; config: ReturnType<typeof loadSiemConfig> }): void {
  const registers = [metrics.registry];
  const config = o.config;
  if (!config) {
    new client.Gauge({ name: "bulkhead_siem_configured", help: "1 when the audit is streamed to a SIEM (BULKHEAD_SIEM_URL), by sink", registers }).set(0);
    return;
  }
  const sink = siemSinkLabel(config);
  new client.Gauge({ name: "bulkhead_siem_configured", help: "1 when the audit is streamed to a SIEM (BULKHEAD_SIEM_URL), by sink", labelNames: ["sink"] as const, registers }).set({ sink }, 1);

  // One reading per scrape, however many gauges ask for it: a scrape calls every collect() at
  // once, so they share the reading in flight; the next scrape measures afresh.
  let pending: Promise<Reading> | null = null;
  const read = (): Promise<Reading> =>
    (pending ??= measure().finally(() => {
      pending = null;
    }));
  const measure = async (): Promise<Reading> => {
    let cursor: SiemCursor | null = null;
    try {
      cursor = readSiemCursor(config.cursorFile);
    } catch {
      // An unreadable cursor: no lag can be computed, and the shipper cannot be healthy either.
    }
    let lag: SiemLag | null = null;
    if (cursor) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), QUERY_TIMEOUT_MS)));
      // With PostgreSQL away the lag is unknown: the series are left out, never guessed.
      lag = await Promise.race([measureSiemLag(o.db, cursor.seq).catch(() => null), timeout]);
      clearTimeout(timer);
    }
    const status = readSiemStatus(o.dataDir);
    const fresh = status !== null && Date.now() - new Date(status.updatedAt).getTime() < SIEM_STATUS_STALE_MS;
    return { cursor, lag, up: cursor !== null && fresh && status.lastError === null && status.state !== "stopped" };
  };

  const gauge = (name: string, help: string, value: (r: Reading) => number | null) =>
    new client.Gauge({
      name,
      help,
      labelNames: ["sink"] as const,
      registers,
      async collect() {
        const v = value(await read());
        this.reset();
        if (v !== null) this.set({ sink }, v);
      },
    });
  gauge("bulkhead_siem_lag_events", "Audit events not yet accepted by the SIEM (chain head minus the shipper's cursor)", (r) => r.lag?.lagEvents ?? null);
  gauge("bulkhead_siem_lag_seconds", "Age of the oldest audit event not yet accepted by the SIEM (0 when caught up)", (r) => r.lag?.lagSeconds ?? null);
  gauge("bulkhead_siem_cursor_seq", "The last audit seq the SIEM accepted", (r) => (r.cursor ? Number(r.cursor.seq) : null));
  gauge("bulkhead_siem_last_success_timestamp_seconds", "When the SIEM last accepted a batch (Unix time)", (r) => (r.cursor?.at ? r.cursor.at.getTime() / 1000 : null));
  gauge("bulkhead_siem_up", "1 while the shipper runs and its last attempt succeeded; 0 when it is failing or not running", (r) => (r.up ? 1 : 0));
}
