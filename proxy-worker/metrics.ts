import client from "prom-client";
import { FastHistogram } from "./fast-histogram";

/** The worker's Prometheus metrics, on /metrics of the health server. */
export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "bulkhead_worker_" });
  const decisions = new client.Counter({
    name: "bulkhead_decisions_total",
    help: "Decisions recorded, by outcome and highest effect",
    labelNames: ["outcome", "effect"] as const,
    registers: [registry],
  });
  const connectionsRefused = new client.Counter({
    name: "bulkhead_connections_refused_total",
    help: "Client connections the listener closed before they authenticated, by listener and reason (source_connection_limit: the oldest of a source that held its share, closed for a newer one)",
    labelNames: ["listener", "reason"] as const,
    registers: [registry],
  });
  // Observed several times per request: FastHistogram, which renders as prom-client's would.
  const stage = new FastHistogram("bulkhead_stage_seconds", "Time per pipeline stage", [0.000005, 0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1], "stage", registry);
  const request = new FastHistogram(
    "bulkhead_forwarded_request_seconds",
    "Time from receiving a request to the end of its response, forwarded requests only",
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    "status_class",
    registry,
  );
  const auditLag = new FastHistogram(
    "bulkhead_audit_flush_lag_seconds",
    "Time from recording an audit event to it being durable in the local audit log (written; fsync'd in strict mode)",
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    null,
    registry,
  );
  const gauges = (name: string, help: string, collect: () => number) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(collect());
      },
    });
  return { registry, decisions, connectionsRefused, stage, request, auditLag, gauges };
}

export type Metrics = ReturnType<typeof createMetrics>;
