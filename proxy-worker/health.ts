import http from "node:http";
import type { Registry } from "prom-client";

export interface HealthSources {
  startedAt: Date;
  /** Everything /readyz reports; `ready` decides the status code. */
  readiness: () => { ready: boolean; status: "ready" | "degraded" | "starting"; [key: string]: unknown };
  metrics?: Registry;
  /** `/sandboxes/known?address=A`: 200 when this worker's snapshot binds A to a live sandbox. */
  sandboxKnown?: (address: string) => boolean;
  /** `/sandboxes/connections?address=A`: how many connections of that sandbox this worker holds open. */
  sandboxConnections?: (address: string) => number;
}

/**
 * The worker's operations endpoint, on its own port (never the proxy's):
 * /healthz: the process is alive; /readyz: it enforces from a policy snapshot (200) or cannot
 * yet (503), and says when it runs degraded (Postgres away: last-known-good snapshot, audit
 * spooling); /metrics: Prometheus.
 */
export function createHealthServer(sources: HealthSources): http.Server {
  return http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, { error: "method_not_allowed" });
    const [path, query] = (req.url ?? "/").split("?");
    if (path === "/healthz") return send(200, { status: "ok", uptimeSeconds: Math.round((Date.now() - sources.startedAt.getTime()) / 1000) });
    if (path === "/readyz") {
      const r = sources.readiness();
      return send(r.ready ? 200 : 503, r);
    }
    if (path === "/sandboxes/known" && sources.sandboxKnown) {
      const address = new URLSearchParams(query ?? "").get("address") ?? "";
      return send(sources.sandboxKnown(address) ? 200 : 404, { address });
    }
    if (path === "/sandboxes/connections" && sources.sandboxConnections) {
      const address = new URLSearchParams(query ?? "").get("address") ?? "";
      return send(200, { address, connections: sources.sandboxConnections(address) });
    }
    if (path === "/metrics" && sources.metrics) {
      const registry = sources.metrics;
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        },
        () => send(500, { error: "metrics_failed" }),
      );
      return;
    }
    return send(404, { error: "not_found" });
  });
}
