/**
 * The audit's Prometheus metrics and health summary: record-to-durable lag, fsync times, shipped
 * batches, and the log's backlog (bytes, events, seconds behind, ok/behind/refusing).
 */
import client from "prom-client";
import type { Metrics } from "../metrics";
import type { AuditWriter, AuditWriterStats } from "./writer";

const BACKLOG = { ok: 0, behind: 1, refusing: 2 } as const;

export function createAuditMetrics(metrics: Metrics) {
  const registers = [metrics.registry];
  const fsync = new client.Histogram({
    name: "bulkhead_audit_fsync_seconds",
    help: "Time per fsync of the audit write-ahead log",
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers,
  });
  const batch = new client.Histogram({
    name: "bulkhead_audit_ship_batch_seconds",
    help: "Time to ship one batch of audit events from the log to PostgreSQL",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers,
  });
  const shipped = new client.Counter({ name: "bulkhead_audit_shipped_events_total", help: "Audit events shipped from the log to PostgreSQL", registers });
  return {
    onFlushLag: (ms: number) => metrics.auditLag.observe(ms / 1000),
    onFsync: (seconds: number) => fsync.observe(seconds),
    onShipped: (events: number, seconds: number) => {
      shipped.inc(events);
      batch.observe(seconds);
    },
    /** Gauges read from the writer at each scrape. */
    watch(writer: AuditWriter) {
      let stats: AuditWriterStats | null = null;
      let at = 0;
      // One stats() per scrape, however many gauges read it.
      const s = () => {
        if (!stats || Date.now() - at > 100) {
          stats = writer.stats();
          at = Date.now();
        }
        return stats;
      };
      metrics.gauges("bulkhead_audit_wal_bytes", "Bytes of audit write-ahead log on disk (mostly not yet shipped)", () => s().walBytes);
      metrics.gauges("bulkhead_audit_wal_segments", "Segment files of the audit write-ahead log", () => s().segments);
      metrics.gauges("bulkhead_audit_shipper_lag_events", "Audit events logged but not yet in PostgreSQL", () => s().lagEvents);
      metrics.gauges("bulkhead_audit_shipper_lag_seconds", "Age of the oldest audit event not yet in PostgreSQL", () => s().lagSeconds);
      metrics.gauges("bulkhead_audit_backlog", "0 ok, 1 behind (log over the soft limit), 2 refusing requests (over the hard limit, or the log's last write or an fsync failed)", () => BACKLOG[s().backlog]);
      metrics.gauges("bulkhead_audit_strict", "1 when every decision is fsync'd before forwarding (strict), 0 for group fsync", () => (s().durability === "strict" ? 1 : 0));
      metrics.gauges("bulkhead_audit_refused_events", "Audit events the log refused (the requests were not forwarded), since start", () => s().failed);
      metrics.gauges("bulkhead_audit_database_connected", "1 while the shipper holds a connection to PostgreSQL", () => (s().connected ? 1 : 0));
    },
  };
}

/** What /readyz says about the audit. */
export function auditHealth(s: AuditWriterStats) {
  return {
    durability: s.durability,
    backlog: s.backlog,
    lagEvents: s.lagEvents,
    lagSeconds: Math.round(s.lagSeconds * 1000) / 1000,
    walBytes: s.walBytes,
    shippedLsn: s.shippedLsn,
    databaseConnected: s.connected,
    writeFailure: s.writeFailure,
    fsyncFailure: s.fsyncFailure,
    lastError: s.lastError,
  };
}
