import client from "prom-client";

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
  const stage = new client.Histogram({
    name: "bulkhead_stage_seconds",
    help: "Time per pipeline stage",
    labelNames: ["stage"] as const,
    buckets: [0.000005, 0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
    registers: [registry],
  });
  const request = new client.Histogram({
    name: "bulkhead_forwarded_request_seconds",
    help: "Time from receiving a request to the end of its response, forwarded requests only",
    labelNames: ["status_class"] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  const auditLag = new client.Histogram({
    name: "bulkhead_audit_flush_lag_seconds",
    help: "Time from recording an audit event to it being durable in the local audit log (written; fsync'd in strict mode)",
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const gauges = (name: string, help: string, collect: () => number) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(collect());
      },
    });
  return { registry, decisions, stage, request, auditLag, gauges };
}

export type Metrics = ReturnType<typeof createMetrics>;
