import http from "node:http";
import { isIP } from "node:net";
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
  /**
   * DNS names a client may reach this endpoint by (BULKHEAD_WORKER_HEALTH_ALLOWED_HOSTS,
   * BULKHEAD_WORKER_HEALTH_HOST when it is a name, the machine's host name); IP literals and
   * `localhost` always may.
   */
  allowedHostNames?: readonly string[];
}

/**
 * Whether a request's Host header names this endpoint the way a scraper, a probe or the launcher
 * does: an IP address, `localhost` (which browsers resolve themselves), or a name the operator
 * listed. A web page the operator has open can reach a loopback port through DNS rebinding
 * (`evil.example` answers with 127.0.0.1 after the page has loaded) and read what it answers,
 * because the browser counts it as the page's own origin; such a request carries the page's
 * name in Host, and is refused before anything is said.
 */
export function healthHostAllowed(hostHeader: string | undefined, allowedNames: readonly string[] = []): boolean {
  // HTTP/1.0 clients may send none; a browser always does.
  if (hostHeader === undefined) return true;
  const value = hostHeader.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(value);
  if (bracketed) return isIP(bracketed[1]!) === 6;
  const plain = /^([^:[\]]+)(?::\d{1,5})?$/.exec(value);
  if (!plain) return false;
  const name = plain[1]!.replace(/\.$/, "");
  if (isIP(name) === 4) return true;
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  return allowedNames.some((allowed) => allowed.toLowerCase().replace(/\.$/, "") === name);
}

/**
 * The worker's operations endpoint, on its own port (never the proxy's):
 * /healthz: the process is alive; /readyz: it enforces from a policy snapshot (200) or cannot
 * yet (503), and says when it runs degraded (Postgres away: last-known-good snapshot, audit
 * spooling); /metrics: Prometheus. Only for requests whose Host is an IP address, localhost or a
 * listed name (healthHostAllowed): never for a page that rebound its own name to this address.
 */
/**
 * What one client of the health port may hold. Anything on the machine can connect to it, an
 * agent running there with the explicit proxy too; the port's connections share the worker's
 * file descriptors with the proxy's listeners, its database connections and its audit log, and
 * without a cap thousands of idle connections left the worker unable to accept or open anything.
 * Scrapers and probes send one short request at a time.
 */
export const HEALTH_MAX_CONNECTIONS = 64;
export const HEALTH_HEADERS_TIMEOUT_MS = 5_000;
export const HEALTH_KEEP_ALIVE_TIMEOUT_MS = 5_000;

export function createHealthServer(sources: HealthSources): http.Server {
  const server = http.createServer({ headersTimeout: HEALTH_HEADERS_TIMEOUT_MS, requestTimeout: 2 * HEALTH_HEADERS_TIMEOUT_MS, keepAliveTimeout: HEALTH_KEEP_ALIVE_TIMEOUT_MS, connectionsCheckingInterval: 1_000 }, (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(body));
    };
    if (!healthHostAllowed(req.headers.host, sources.allowedHostNames)) {
      return send(403, { error: "host_not_allowed", message: "This endpoint answers requests addressed to an IP address, localhost or a name in BULKHEAD_WORKER_HEALTH_ALLOWED_HOSTS." });
    }
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
  // Beyond the cap a new connection is closed at once (the proxy's own listeners are unaffected).
  server.maxConnections = HEALTH_MAX_CONNECTIONS;
  // A connection that sends nothing is not a request the headers timeout watches: it is closed
  // once it has been idle this long.
  server.setTimeout(HEALTH_HEADERS_TIMEOUT_MS);
  return server;
}
