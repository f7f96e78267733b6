import http from "node:http";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import type { Logger } from "@/lib/log";
import type { ServiceRegistry } from "@/lib/semantics/registry";
import type { AuthenticatedTask } from "../identity/token-verifier";
import { dialChecked } from "../net/dial";
import { createInterceptingTlsOptions, type LeafCertificateCache } from "../tls/leaf-cache";
import type { ConnectionRegistry } from "./connections";
import { tokenFromProxyAuthorization } from "./credentials";
import { ProxyRefusal } from "./errors";
import { createProxyServer, writeRawRefusal, type ListenerLimits } from "./explicit-listener";
import { handleProxyRequest, sendRefusal, type HandlerDeps } from "./handler";
import type { Pipeline } from "./pipeline";
import type { IncomingAction } from "./types";

/** What an intercepted connection was authorised for, attached to its decrypted socket. */
interface TunnelContext {
  listener: "intercepted" | "transparent";
  scheme: "http" | "https";
  /** Fixed by CONNECT / SNI; null for transparent plain HTTP (the Host header names it). */
  authority: { host: string; port: number } | null;
  identity: IncomingAction["identity"];
}

const CONNECT_TARGET = /^(?:([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)|\[([0-9a-f:.]+)\]):([0-9]{1,5})$/i;

export function parseConnectTarget(target: string): { host: string; port: number } | null {
  const m = CONNECT_TARGET.exec(target);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2] ?? "").toLowerCase(), port };
}

export interface TunnelDeps {
  handler: HandlerDeps;
  pipeline: Pipeline;
  leafCache: () => LeafCertificateCache | null;
  registry: () => ServiceRegistry | null;
  limits: ListenerLimits;
  log: Logger;
  connectTimeoutMs: number;
  connections: ConnectionRegistry;
  /** A passthrough tunnel with no traffic either way for this long is closed. */
  tunnelIdleTimeoutMs: number;
  /** No tunnel or transparent connection stays open longer (nor past its token's expiry). */
  tunnelMaxLifetimeMs: number;
}

const ownerOf = (auth: AuthenticatedTask) => ({ taskId: auth.taskId, agentId: auth.agentId, jti: auth.jti });

/** Closes `socket` after `ms` (a tunnel's maximum lifetime), unless it closed first. */
function closeAfter(socket: Duplex, ms: number): void {
  const timer = setTimeout(() => socket.destroy(), Math.max(0, ms));
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

/**
 * Intercepted traffic (CONNECT tunnels and transparent connections) is decrypted and handed to
 * one inner HTTP server, whose requests go through the same handler as the explicit listener,
 * each judged on its own, with the authority that was authorised for the connection.
 */
export class Tunnels {
  private readonly contexts = new WeakMap<object, TunnelContext>();
  readonly inner: http.Server;

  constructor(private readonly deps: TunnelDeps) {
    this.inner = createProxyServer(deps.limits, deps.log, (req, res) => this.onInnerRequest(req, res));
  }

  private onInnerRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const ctx = this.contexts.get(req.socket);
    if (!ctx) {
      sendRefusal(res, new ProxyRefusal("malformed", "no_tunnel_context", "request arrived on an unknown connection"));
      return;
    }
    const target = req.url ?? "";
    if (!target.startsWith("/")) {
      sendRefusal(res, new ProxyRefusal("malformed", "absolute_form_in_tunnel", "inside a tunnel, send origin-form requests (/path)"));
      return;
    }
    const authority = ctx.authority;
    if (ctx.listener === "transparent" && ctx.scheme === "https" && authority) {
      // Transparent TLS: the SNI fixed the host; the port comes from Host (the service's ports
      // still bound it), and the Host must name the SNI's host.
      const host = req.headers.host ?? "";
      let port = 443;
      try {
        port = Number(new URL(`https://${host}`).port || 443);
      } catch {
        sendRefusal(res, new ProxyRefusal("malformed", "host_invalid", "the Host header is not valid"));
        return;
      }
      void handleProxyRequest(this.deps.handler, req, res, {
        listener: ctx.listener,
        identity: ctx.identity,
        url: `https://${host}${target}`,
        tunnelAuthority: { host: authority.host, port },
      });
      return;
    }
    if (!authority) {
      // Transparent plain HTTP: the Host header names the destination (it is checked like any URL).
      const host = req.headers.host;
      if (!host) {
        sendRefusal(res, new ProxyRefusal("malformed", "host_missing", "a Host header is required"));
        return;
      }
      void handleProxyRequest(this.deps.handler, req, res, { listener: ctx.listener, identity: ctx.identity, url: `${ctx.scheme}://${host}${target}` });
      return;
    }
    const hostPart = authority.host.includes(":") ? `[${authority.host}]` : authority.host;
    void handleProxyRequest(this.deps.handler, req, res, {
      listener: ctx.listener,
      identity: ctx.identity,
      url: `${ctx.scheme}://${hostPart}:${authority.port}${target}`,
      tunnelAuthority: authority,
    });
  }

  /** CONNECT on the explicit listener. */
  onConnect = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const target = parseConnectTarget(req.url ?? "");
    if (!target) {
      writeRawRefusal(socket, new ProxyRefusal("malformed", "connect_target", "CONNECT target must be a plain host:port"));
      return;
    }
    const identity = { kind: "token" as const, token: tokenFromProxyAuthorization(req.headers["proxy-authorization"]) };
    socket.on("error", () => socket.destroy());
    const match = this.deps.registry()?.match(target.host, target.port, "https");
    if (match?.kind === "service" && match.descriptor.proxy.tls === "passthrough") {
      void this.passthrough(socket, head, identity, target, req.socket.remoteAddress ?? "");
      return;
    }
    // Authenticate before any TLS work: no valid token, no tunnel. Inner requests are each
    // re-verified, and the tunnel is registered under its task, agent and jti, so a kill switch
    // closes it; it lives no longer than its token.
    const scheme = match?.kind === "service" && match.descriptor.scheme === "http" ? "http" : "https";
    this.deps.pipeline.authenticateConnect({ listener: "intercepted", clientAddress: req.socket.remoteAddress ?? "", identity }, req.url ?? "").then(
      (auth) => {
        this.deps.connections.register(socket, ownerOf(auth));
        if (socket.destroyed) return;
        socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        if (head.length) socket.unshift(head);
        this.accept(socket, { listener: "intercepted", scheme, authority: target, identity }, this.lifetimeFor(auth));
      },
      (error: unknown) => writeRawRefusal(socket, error instanceof ProxyRefusal ? error : new ProxyRefusal("identity", "token_unverifiable", "task token could not be verified")),
    );
  };

  /** How long a tunnel of `auth` may stay open: the maximum lifetime, and never past its token's expiry. */
  private lifetimeFor(auth: AuthenticatedTask): number {
    const untilExpiry = auth.token ? auth.token.expiresAt.getTime() - Date.now() : Number.POSITIVE_INFINITY;
    return Math.min(this.deps.tunnelMaxLifetimeMs, untilExpiry);
  }

  /** Hands a client connection to the inner server, terminating TLS with a leaf for the authorised name. */
  accept(socket: Duplex, ctx: TunnelContext, lifetimeMs = this.deps.tunnelMaxLifetimeMs): void {
    closeAfter(socket, lifetimeMs);
    if (ctx.scheme === "http") {
      this.contexts.set(socket, ctx);
      this.inner.emit("connection", socket);
      return;
    }
    const cache = this.deps.leafCache();
    if (!cache) {
      socket.destroy();
      return;
    }
    const tlsSocket = new tls.TLSSocket(socket as import("node:net").Socket, {
      isServer: true,
      // The SNI must name the authorised host (CONNECT target); transparent: any valid name.
      ...createInterceptingTlsOptions(cache, ctx.authority ? { expectedServerName: ctx.authority.host } : {}),
    });
    tlsSocket.on("error", () => tlsSocket.destroy());
    tlsSocket.once("secure", () => {
      const sni = (tlsSocket as tls.TLSSocket & { servername?: string | false }).servername;
      const authority = ctx.authority ?? (typeof sni === "string" ? { host: sni.toLowerCase(), port: 443 } : null);
      if (!authority) {
        tlsSocket.destroy();
        return;
      }
      this.contexts.set(tlsSocket, { ...ctx, authority });
      // One connection: whatever closes the TLS layer's requests closes the socket under it.
      this.deps.connections.layer(tlsSocket, socket);
      this.inner.emit("connection", tlsSocket);
    });
  }

  private async passthrough(socket: Duplex, head: Buffer, identity: IncomingAction["identity"], target: { host: string; port: number }, client: string): Promise<void> {
    try {
      const plan = await this.deps.pipeline.evaluateTunnel({ listener: "explicit", clientAddress: client, identity }, target.host, target.port);
      const upstream = await dialChecked(plan.destination, { timeoutMs: this.deps.connectTimeoutMs });
      // Registered before the 200: a kill switch pulled meanwhile closes it here and now.
      this.deps.connections.register(socket, ownerOf(plan.auth));
      this.deps.connections.layer(upstream, socket);
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      // The client's side closing (kill switch, idle timeout, lifetime, the client) closes the
      // upstream's; an upstream that ends is piped through, so its last bytes still arrive.
      upstream.on("error", () => socket.destroy());
      socket.on("error", () => upstream.destroy()).once("close", () => upstream.destroy());
      (socket as import("node:net").Socket).setTimeout(this.deps.tunnelIdleTimeoutMs, () => socket.destroy());
      closeAfter(socket, this.lifetimeFor(plan.auth));
      socket.pipe(upstream).pipe(socket);
    } catch (error) {
      writeRawRefusal(socket, error instanceof ProxyRefusal ? error : new ProxyRefusal("bad_gateway", "upstream_unreachable", "the upstream could not be reached"));
    }
  }
}
