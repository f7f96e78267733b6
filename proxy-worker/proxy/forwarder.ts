import { Pool, type Dispatcher } from "undici";
import type { SecureContextOptions } from "node:tls";
import type { CanonicalRequest } from "@/lib/semantics/types";
import { checkedConnector } from "@/lib/net/dial";
import type { CheckedDestination } from "@/lib/net/resolve";
import type { RelayOutcome, ResponseRelay } from "./relay";

export type { CheckedDestination };

/**
 * Pools kept at once. Each holds its idle upstream connections for the keep-alive timeout; a
 * service with a wildcard host lets a task name a new origin with every request, so without a
 * bound a task at its request rate held one idle connection (a file descriptor) per origin
 * named in the last 30 s: thousands, enough to leave the worker unable to accept or dial. Past
 * the bound, the least recently used pool is closed (its requests in flight finish first).
 */
export const MAX_POOLS = 256;

/**
 * Methods whose requests carry a body that every server reads (undici's own list). A body on any
 * other method (GET, HEAD, DELETE, OPTIONS...) "has no generally defined semantics" (RFC 9110
 * §9.3.1) and some servers do not read it: they take its bytes for the next request on the
 * connection (a CL.0 desync), one Bulkhead never judged, run with whatever that server trusts
 * the connection for (its source address, an internal service's network position).
 */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "QUERY", "PROPFIND", "PROPPATCH"]);

export interface ForwardLimits {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  connectionsPerPool: number;
}

/**
 * Sends canonical requests upstream over pooled keep-alive connections. Each pool belongs to one
 * (origin, checked address) pair and can only ever connect to that address, so a name that
 * later resolves elsewhere cannot redirect traffic. Redirects are returned, never followed.
 *
 * And to one task (`partition`): a pool's connections are bounded (`connectionsPerPool`), and
 * a pool shared by every task let one task hold all of them (64 event streams or long polls,
 * read as they came) while every other task's requests to that service waited in the pool's
 * queue until they failed. Each task now queues only behind its own requests.
 */
export class Forwarder {
  private readonly pools = new Map<string, { pool: Pool; lastUsed: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly limits: ForwardLimits,
    /** Extra CAs trusted for upstream TLS besides the system's (tests, internal services). */
    private readonly upstreamCa?: SecureContextOptions["ca"],
  ) {
    this.sweeper = setInterval(() => this.sweep(), 30_000);
    this.sweeper.unref();
  }

  private poolFor(scheme: "http" | "https", dest: CheckedDestination, partition: string): Pool {
    const key = `${scheme}://${dest.host}:${dest.port}@${dest.address}#${partition}`;
    let entry = this.pools.get(key);
    if (entry) {
      // Most recently used last: the map's first entry is the one to close when it is full.
      this.pools.delete(key);
      this.pools.set(key, entry);
    } else {
      if (this.pools.size >= MAX_POOLS) {
        const [oldestKey, oldest] = this.pools.entries().next().value as [string, { pool: Pool }];
        this.pools.delete(oldestKey);
        void oldest.pool.close().catch(() => undefined);
      }
      const origin = `${scheme}://${dest.host.includes(":") ? `[${dest.host}]` : dest.host}:${dest.port}`;
      const pool = new Pool(origin, {
        // The pool can only ever dial this checked address (and, for TLS, verify this name).
        connect: checkedConnector(dest, {
          timeoutMs: this.limits.connectTimeoutMs,
          tls: scheme === "https" ? { servername: dest.host, ca: this.upstreamCa } : undefined,
        }),
        connections: this.limits.connectionsPerPool,
        keepAliveTimeout: this.limits.keepAliveTimeoutMs,
        headersTimeout: this.limits.headersTimeoutMs,
        bodyTimeout: this.limits.bodyTimeoutMs,
        pipelining: 1,
      });
      entry = { pool, lastUsed: Date.now() };
      this.pools.set(key, entry);
    }
    entry.lastUsed = Date.now();
    return entry.pool;
  }

  /**
   * Sends the request and hands its answer to `relay` as it arrives (relay.ts); resolves when
   * the exchange is over, with the upstream's status or why it failed. Never rejects. `partition`
   * (the task) names whose connections it may use.
   */
  forward(request: CanonicalRequest, dest: CheckedDestination, headers: Record<string, string>, relay: ResponseRelay, partition = ""): Promise<RelayOutcome> {
    const path = `${request.path}${request.query ? `?${request.query}` : ""}`;
    const body = request.body && request.body.length > 0 ? Buffer.from(request.body) : request.method === "GET" || request.method === "HEAD" ? null : "";
    // Such a body goes on a connection that ends with it: sent with `Connection: close`, after
    // which the upstream processes nothing more on it (RFC 9112 §9.6), and never reused. undici
    // would only stop reusing the connection, having announced keep-alive, so an upstream that
    // skipped the body ran the request in it (tests/integration/proxy/desync.test.ts).
    const reset = body !== null && body.length > 0 && !BODY_METHODS.has(request.method) ? true : undefined;
    // The final answer's head must come within the connect and upstream timeouts of now, however
    // many informational (1xx) answers come first (relay.ts, finalHeadBy).
    relay.finalHeadBy(performance.now() + this.limits.connectTimeoutMs + this.limits.headersTimeoutMs);
    try {
      this.poolFor(request.scheme, dest, partition).dispatch({ method: request.method as Dispatcher.HttpMethod, path, headers, body, reset }, relay);
    } catch (error) {
      // Refused before it was sent (undici validates the request as it is dispatched).
      relay.onResponseError(null as unknown as Dispatcher.DispatchController, error as Error);
    }
    return relay.done;
  }

  private sweep(): void {
    const cutoff = Date.now() - 5 * 60_000;
    for (const [key, entry] of this.pools) {
      if (entry.lastUsed < cutoff) {
        this.pools.delete(key);
        void entry.pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.pools.values()].map((e) => e.pool.close().catch(() => undefined)));
    this.pools.clear();
  }
}
