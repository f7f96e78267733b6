import http from "node:http";
import type { PolicyStoreStatus } from "./policy/store";

export interface HealthSources {
  policy: () => PolicyStoreStatus;
  startedAt: Date;
}

/**
 * The worker's operations endpoint, on its own port (never the proxy's):
 * /healthz: the process is alive; /readyz: it has a policy snapshot to enforce from (200) or not
 * yet (503), and says when that snapshot is stale because Postgres is away.
 */
export function createHealthServer(sources: HealthSources): http.Server {
  return http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, { error: "method_not_allowed" });
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") return send(200, { status: "ok", uptimeSeconds: Math.round((Date.now() - sources.startedAt.getTime()) / 1000) });
    if (path === "/readyz") {
      const policy = sources.policy();
      const ready = policy.version > 0;
      return send(ready ? 200 : 503, {
        status: ready ? (policy.stale ? "degraded" : "ready") : "starting",
        policy,
        // The proxy listener arrives with the enforcement work; until then nothing is proxied.
        enforcing: false,
      });
    }
    return send(404, { error: "not_found" });
  });
}
