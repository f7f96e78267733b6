import type { IncomingHttpHeaders } from "node:http";
import { Pool, type Dispatcher } from "undici";
import type { SecureContextOptions } from "node:tls";
import type { CanonicalRequest } from "@/lib/semantics/types";
import { checkedConnector } from "@/lib/net/dial";
import type { CheckedDestination } from "@/lib/net/resolve";
import { ProxyRefusal } from "./errors";
import type { Cancellation } from "./relay";

export type { CheckedDestination };

export interface ForwardLimits {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  connectionsPerPool: number;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData["body"];
}

/**
 * Sends canonical requests upstream over pooled keep-alive connections. Each pool belongs to one
 * (origin, checked address) pair and can only ever connect to that address, so a name that
 * later resolves elsewhere cannot redirect traffic. Redirects are returned, never followed.
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

  private poolFor(scheme: "http" | "https", dest: CheckedDestination): Pool {
    const key = `${scheme}://${dest.host}:${dest.port}@${dest.address}`;
    let entry = this.pools.get(key);
    if (!entry) {
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

  async forward(request: CanonicalRequest, dest: CheckedDestination, headers: Record<string, string>, signal?: AbortSignal | Cancellation): Promise<UpstreamResponse> {
    const path = `${request.path}${request.query ? `?${request.query}` : ""}`;
    try {
      const res = await this.poolFor(request.scheme, dest).request({
        method: request.method as Dispatcher.HttpMethod,
        path,
        headers,
        body: request.body && request.body.length > 0 ? Buffer.from(request.body) : request.method === "GET" || request.method === "HEAD" ? null : "",
        signal,
      });
      return { statusCode: res.statusCode, headers: res.headers, body: res.body };
    } catch (error) {
      throw upstreamRefusal(error);
    }
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

function upstreamRefusal(error: unknown): ProxyRefusal {
  const code = (error as { code?: string }).code ?? "";
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT") {
    return new ProxyRefusal("timeout", "upstream_timeout", "the upstream did not answer in time");
  }
  if (code === "UND_ERR_ABORTED") return new ProxyRefusal("bad_gateway", "client_gone", "the client went away");
  if (code === "connect_timeout") return new ProxyRefusal("timeout", "upstream_timeout", "the upstream did not accept the connection in time");
  if (code === "dial_refused") return new ProxyRefusal("bad_gateway", "dial_refused", "the proxy refused to dial an unchecked destination");
  const message = error instanceof Error ? error.message : String(error);
  if (/certificate|self.signed|unable to verify|CERT_|altnames/i.test(message)) {
    return new ProxyRefusal("bad_gateway", "upstream_tls", "the upstream's TLS certificate could not be verified");
  }
  return new ProxyRefusal("bad_gateway", "upstream_unreachable", "the upstream could not be reached");
}
