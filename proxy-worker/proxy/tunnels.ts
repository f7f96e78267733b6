import http from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import type { Logger } from "@/lib/log";
import { canonicalAuthority } from "@/lib/semantics/canonical";
import type { ServiceMatch } from "@/lib/semantics/registry";
import { validateServerName } from "@/lib/tls/leaf";
import type { AuthenticatedTask } from "../identity/token-verifier";
import { dialChecked } from "@/lib/net/dial";
import { createInterceptingTlsOptions, type LeafCertificateCache } from "../tls/leaf-cache";
import type { LeafBudget } from "../isolation/leaf-budget";
import { whyUnreachable } from "../isolation/reachability";
import type { ConnectionRegistry } from "./connections";
import { proxyAuthorizationOf, tokenIdentity } from "./credentials";
import { logDecision, refusalLine } from "./decision-log";
import { ProxyRefusal } from "./errors";
import { createProxyServer, refuseRaw, writeRawRefusal, type ListenerDeps, type ListenerLimits } from "./explicit-listener";
import { handleProxyRequest, internalRefusal, refuseRequest, type HandlerDeps } from "./handler";
import type { EnforcementState } from "./enforcement-state";
import type { Pipeline } from "./pipeline";
import { admitConnect, evaluateTunnel } from "./tunnel-path";
import type { ReceivedRequest } from "./types";

/** What an intercepted connection was authorised for, attached to its decrypted socket. */
interface TunnelContext {
  listener: "intercepted" | "transparent";
  scheme: "http" | "https";
  /** Fixed by CONNECT / SNI, in canonical form (IPv6 bracketed); null for transparent plain HTTP (the Host header names it). */
  authority: { host: string; port: number } | null;
  identity: ReceivedRequest["identity"];
  /** The client's own connection (the CONNECT or accepted socket): what per-task connection limits count. */
  connection: Duplex;
}

/**
 * A CONNECT target: exactly `host:port` (IPv6 in brackets), in the same canonical form as a
 * request's authority, so that the tunnel and the requests inside it compare equal spellings.
 */
export function parseConnectTarget(target: string): { host: string; port: number } | null {
  if (!/^(?:\[[0-9A-Fa-f:.]+\]|[^:[\]]+):[0-9]{1,5}$/.test(target)) return null;
  const parsed = canonicalAuthority("https", target);
  return parsed.ok ? { host: parsed.host, port: parsed.port } : null;
}

/** The name a TLS handshake for `host` must carry (no brackets around IPv6). */
const tlsName = (host: string) => (host.startsWith("[") ? host.slice(1, -1) : host);
const isIpLiteral = (host: string) => host.startsWith("[") || /^[0-9.]+$/.test(host);
/** Client-side endings that are not refusals: the client simply went away. */
const GONE = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE", "ETIMEDOUT"]);

export interface TunnelDeps {
  handler: HandlerDeps & ListenerDeps;
  pipeline: Pipeline;
  /** The enforcement state in force: its registry names the service, its CA issues the leaves. */
  state: () => EnforcementState | null;
  limits: ListenerLimits;
  log: Logger;
  connectTimeoutMs: number;
  connections: ConnectionRegistry;
  /** A passthrough tunnel with no traffic either way for this long is closed. */
  tunnelIdleTimeoutMs: number;
  /** No tunnel or transparent connection stays open longer (nor past its token's expiry). */
  tunnelMaxLifetimeMs: number;
  /** New leaves a sandbox may have made on the transparent TLS listener (unset: no bound). */
  leafBudget?: LeafBudget;
}

const ownerOf = (auth: AuthenticatedTask) => ({ taskId: auth.taskId, agentId: auth.agentId, jti: auth.jti });

/** Closes `socket` after `ms` (a tunnel's maximum lifetime), unless it closed first. */
function closeAfter(socket: Duplex, ms: number): void {
  const timer = setTimeout(() => socket.destroy(), Math.max(0, ms));
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

/** How an accepted connection is taken over: prepared TLS options, and how long it may live. */
export interface AcceptOptions {
  prepared?: tls.TLSSocketOptions;
  lifetimeMs?: number;
}

/**
 * Intercepted traffic (CONNECT tunnels and transparent connections) is decrypted and handed to
 * one inner HTTP server, whose requests go through the same handler as the explicit listener,
 * each judged on its own, with the authority that was authorised for the connection. Every
 * asynchronous step here ends in a refusal or a closed socket, never in an unhandled error.
 */
export class Tunnels {
  private readonly contexts = new WeakMap<object, TunnelContext>();
  readonly inner: http.Server;

  constructor(private readonly deps: TunnelDeps) {
    this.inner = createProxyServer(deps.limits, deps.handler, "intercepted", (req, res) => this.onInnerRequest(req, res));
  }

  private onInnerRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const refuse = (refusal: ProxyRefusal, listener: TunnelContext["listener"]) => void refuseRequest(this.deps.handler, req, res, refusal, listener).catch(() => res.destroy());
    const ctx = this.contexts.get(req.socket);
    if (!ctx) return refuse(new ProxyRefusal("malformed", "no_tunnel_context", "request arrived on an unknown connection"), "intercepted");
    const target = req.url ?? "";
    if (!target.startsWith("/")) {
      const why = ctx.listener === "transparent" ? "a sandbox's connection goes to the destination itself: send origin-form requests (/path), not a proxy's absolute form" : "inside a tunnel, send origin-form requests (/path)";
      return refuse(new ProxyRefusal("malformed", "absolute_form_in_tunnel", why), ctx.listener);
    }
    const base = { listener: ctx.listener, identity: ctx.identity, connection: ctx.connection };
    const authority = ctx.authority;
    if (ctx.listener === "transparent" && ctx.scheme === "https" && authority) {
      // Transparent TLS: the SNI fixed the host; the port comes from Host (the service's ports
      // still bound it), and the Host must name the SNI's host.
      const host = req.headers.host ?? "";
      const parsed = canonicalAuthority("https", host);
      if (!parsed.ok) return refuse(new ProxyRefusal("malformed", "host_invalid", "the Host header is not valid"), ctx.listener);
      void handleProxyRequest(this.deps.handler, req, res, { ...base, url: `https://${host}${target}`, tunnelAuthority: { host: authority.host, port: parsed.port } });
      return;
    }
    if (!authority) {
      // Transparent plain HTTP: the Host header names the destination (it is checked like any URL).
      const host = req.headers.host;
      if (!host) return refuse(new ProxyRefusal("malformed", "host_missing", "a Host header is required"), ctx.listener);
      void handleProxyRequest(this.deps.handler, req, res, { ...base, url: `${ctx.scheme}://${host}${target}` });
      return;
    }
    void handleProxyRequest(this.deps.handler, req, res, { ...base, url: `${ctx.scheme}://${authority.host}:${authority.port}${target}`, tunnelAuthority: authority });
  }

  /** CONNECT on the explicit listener. */
  onConnect = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Node's HTTP server has removed its own handlers from this socket: ours come first.
    socket.on("error", () => socket.destroy());
    this.connect(req, socket, head).catch((error: unknown) => {
      const refusal = internalRefusal(this.deps.log, error);
      refuseRaw(this.deps.handler, socket, refusal, { listener: "explicit", client: req.socket.remoteAddress ?? "", method: "CONNECT", url: req.url }).catch(() => socket.destroy());
    });
  };

  private async connect(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const client = req.socket.remoteAddress ?? "";
    const where = { listener: "explicit" as const, client, method: "CONNECT", url: req.url ?? "" };
    const target = parseConnectTarget(req.url ?? "");
    if (!target) return refuseRaw(this.deps.handler, socket, new ProxyRefusal("malformed", "connect_target", "CONNECT target must be a plain host:port"), where);
    const identity = tokenIdentity(proxyAuthorizationOf(req));
    // The registry is matched here, once, in the state the tunnel is then judged by.
    const state = this.deps.state();
    const registry = state?.registry;
    const overTls = registry?.match(target.host, target.port, "https");
    if (overTls?.kind === "service" && overTls.descriptor.proxy.tls === "passthrough") return this.passthrough(socket, head, identity, { ...target, match: overTls }, client, state);
    // A plain-HTTP service may be tunnelled too; then the tunnel carries HTTP, not TLS.
    const plain = overTls?.kind === "mismatch" && overTls.descriptor.scheme === "http" ? registry?.match(target.host, target.port, "http") : undefined;
    const scheme = plain?.kind === "service" ? "http" : "https";
    const match = plain?.kind === "service" ? plain : overTls;
    if (scheme === "https") {
      try {
        validateServerName(tlsName(target.host));
      } catch {
        return refuseRaw(this.deps.handler, socket, new ProxyRefusal("malformed", "tls_server_name", `${target.host} cannot be a TLS server name, so a tunnel to it cannot be inspected`), where);
      }
    }

    // Identity, budgets, destination and ports are decided before the tunnel opens.
    let admitted: Awaited<ReturnType<typeof admitConnect>>;
    try {
      // A host a service claims on a port it does not list is that service's, never an unknown
      // host's: its ports are the ones checked (and named in the refusal; it said "443").
      const claimed = plain?.kind === "mismatch" ? plain : match;
      const descriptor = claimed?.kind === "service" || claimed?.kind === "mismatch" ? claimed.descriptor : null;
      admitted = await admitConnect(this.deps.pipeline, { listener: "intercepted", clientAddress: client, identity, connection: socket }, { ...target, scheme, descriptor }, state);
    } catch (error) {
      if (!(error instanceof ProxyRefusal)) throw error;
      writeRawRefusal(socket, error);
      logDecision(this.deps.log, refusalLine(error));
      return;
    }
    let options: tls.TLSSocketOptions | undefined;
    if (scheme === "https") {
      const cache = state?.leaves;
      if (!cache) return refuseRaw(this.deps.handler, socket, new ProxyRefusal("unavailable", "interception_unavailable", "TLS interception is not ready"), where);
      // A leaf for a name the cache does not hold is made only within the task's budget of new
      // names: a CONNECT to any address (1.2.3.4:443, no DNS, no upstream needed) made the worker
      // mint a certificate per address, without limit, spend its CPU on them and push every other
      // task's leaves out of the shared cache (sandboxes have the same budget: admitLeaf). The
      // tunnel to a destination the policy cannot reach still opens: what is sent inside it is
      // refused, audited, with the policy's reason.
      const refusal = this.leafRefusal(admitted.auth, tlsName(target.host), cache);
      if (refusal) {
        this.deps.connections.register(socket, ownerOf(admitted.auth));
        return refuseRaw(this.deps.handler, socket, refusal, where);
      }
      options = createInterceptingTlsOptions(cache, { expectedServerName: tlsName(target.host) });
      // A client reaching an IP literal sends no SNI: the leaf for that address is the default.
      if (isIpLiteral(target.host)) options.secureContext = await cache.secureContextFor(tlsName(target.host));
    }
    // Registered under its task, agent and jti before the 200, so a kill switch closes it (one
    // pulled meanwhile closes it here and now); it lives no longer than its token.
    this.deps.connections.register(socket, ownerOf(admitted.auth));
    if (socket.destroyed) return;
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    logDecision(this.deps.log, {
      eventId: admitted.eventId,
      listener: "explicit",
      client,
      method: "CONNECT",
      url: `${target.host}:${target.port}`,
      taskId: admitted.auth.taskId,
      agentId: admitted.auth.agentId,
      service: match?.kind === "service" ? match.descriptor.id : null,
      decision: "allow",
      reason: "tunnel opened: each request inside it is judged on its own",
      status: 200,
      destination: admitted.destination.address,
    });
    if (head.length) socket.unshift(head);
    this.accept(socket, { listener: "intercepted", scheme, authority: target, identity, connection: socket }, { prepared: options, lifetimeMs: this.lifetimeFor(admitted.auth) });
  }

  /** How long a tunnel of `auth` may stay open: the maximum lifetime, and never past its token's expiry. */
  private lifetimeFor(auth: AuthenticatedTask): number {
    const untilExpiry = auth.token ? auth.token.expiresAt.getTime() - Date.now() : Number.POSITIVE_INFINITY;
    return Math.min(this.deps.tunnelMaxLifetimeMs, untilExpiry);
  }

  /** Hands a client connection to the inner server, terminating TLS with a leaf for the authorised name. */
  accept(socket: Duplex, ctx: TunnelContext, { prepared, lifetimeMs = this.deps.tunnelMaxLifetimeMs }: AcceptOptions = {}): void {
    try {
      closeAfter(socket, lifetimeMs);
      if (ctx.scheme === "http") {
        this.contexts.set(socket, ctx);
        this.inner.emit("connection", socket);
        return;
      }
      socket.on("error", () => socket.destroy());
      const cache = this.deps.state()?.leaves;
      if (!cache) {
        socket.destroy();
        return;
      }
      // Transparent: a name its sandbox's task could reach, within the sandbox's budget of new
      // leaves (it is judged with the original destination afterwards). Minted for any name, an
      // external sandbox had the worker make a leaf per name it chose, without limit, and push
      // every other task's leaves out of the shared cache.
      const options = prepared ?? createInterceptingTlsOptions(cache, { admit: (name) => this.admitLeaf(ctx, cache, name) });
      const tlsSocket = new tls.TLSSocket(socket as net.Socket, { isServer: true, ...options });
      let secured = false;
      // A client that opens the connection and never finishes its handshake does not keep it.
      const slow = setTimeout(() => {
        if (secured) return;
        this.handshakeFailed(Object.assign(new Error("handshake timed out"), { code: "handshake_timeout" }), socket, ctx);
        tlsSocket.destroy();
      }, this.deps.limits.headersTimeoutMs);
      tlsSocket.once("close", () => clearTimeout(slow));
      // A client that leaves before its handshake is finished (its last message never sent) is
      // let go of at once: kept until the head timeout, it counted against the task's and the
      // agent's connection limits for 20 s (256 of them locked the task out).
      const gone = () => {
        if (secured) return;
        clearTimeout(slow);
        tlsSocket.destroy();
        socket.destroy();
      };
      tlsSocket.once("end", gone);
      socket.once("end", gone);
      socket.once("close", gone);
      tlsSocket.on("error", (error: NodeJS.ErrnoException) => {
        if (!secured) this.handshakeFailed(error, socket, ctx);
        tlsSocket.destroy();
      });
      tlsSocket.once("secure", () => {
        secured = true;
        clearTimeout(slow);
        const sni = (tlsSocket as tls.TLSSocket & { servername?: string | false }).servername;
        const fromSni = typeof sni === "string" ? canonicalAuthority("https", sni) : null;
        const authority = ctx.authority ?? (fromSni?.ok ? { host: fromSni.host, port: 443 } : null);
        if (!authority) {
          tlsSocket.destroy();
          return;
        }
        this.contexts.set(tlsSocket, { ...ctx, authority });
        // One connection: whatever closes the TLS layer's requests closes the socket under it.
        this.deps.connections.layer(tlsSocket, socket);
        this.inner.emit("connection", tlsSocket);
      });
    } catch (error) {
      this.deps.log.error({ err: error instanceof Error ? error.message : String(error) }, "could not take over an intercepted connection");
      socket.destroy();
    }
  }

  /** Why an explicit tunnel of `auth` gets no leaf certificate for `name`, or null when it may. */
  private leafRefusal(auth: AuthenticatedTask, name: string, cache: LeafCertificateCache): ProxyRefusal | null {
    if (this.deps.leafBudget && !cache.holds(name) && !this.deps.leafBudget.take(`task:${auth.taskId}`)) {
      return new ProxyRefusal("rate_limited", "certificate_limit", "the task had the proxy make more certificates for new names than its limit allows (BULKHEAD_SANDBOX_LEAVES_PER_MINUTE); try again in a minute");
    }
    return null;
  }

  /** Whether a transparent connection's sandbox may have a leaf made for `name` (null) or why not. */
  private admitLeaf(ctx: TunnelContext, cache: LeafCertificateCache, name: string): Error | null {
    const state = this.deps.state();
    const binding = ctx.identity.kind === "sandbox" ? state?.snapshot.sandboxBindings.get(ctx.identity.sourceAddress) : undefined;
    if (!state || !binding) return Object.assign(new Error("this address belongs to no sandbox"), { reason: "sandbox_unknown" });
    // The port comes from the Host header later; the service is matched as its default port would.
    const why = whyUnreachable(state, binding.taskId, name, 443, state.registry.match(name, 443, "https"));
    if (why) return Object.assign(new Error(why), { reason: "destination_unreachable" });
    if (this.deps.leafBudget && !cache.holds(name) && !this.deps.leafBudget.take(binding.sandboxId)) {
      return Object.assign(new Error("the sandbox had the proxy make more certificates for new names than its limit allows (BULKHEAD_SANDBOX_LEAVES_PER_MINUTE)"), { reason: "sandbox_certificate_limit" });
    }
    return null;
  }

  /** A handshake that failed before any request: audited (aggregated in floods), no response possible. */
  private handshakeFailed(error: NodeJS.ErrnoException, socket: Duplex, ctx: TunnelContext): void {
    if (GONE.has(error.code ?? "")) return;
    const reason = (error as { reason?: string }).reason ?? error.code ?? "handshake_failed";
    const refusal = new ProxyRefusal("malformed", "tls_handshake_failed", `the TLS handshake was refused (${reason.slice(0, 64)})`);
    const where = { listener: ctx.listener === "intercepted" ? ("intercepted" as const) : ("transparent" as const), client: (socket as net.Socket).remoteAddress ?? "", url: ctx.authority ? `${ctx.authority.host}:${ctx.authority.port}` : undefined };
    refuseRaw(this.deps.handler, socket, refusal, where, false).catch(() => undefined);
  }

  private async passthrough(socket: Duplex, head: Buffer, identity: ReceivedRequest["identity"], target: { host: string; port: number; match: ServiceMatch }, client: string, state: EnforcementState | null): Promise<void> {
    let eventId: string | null = null;
    try {
      const plan = await evaluateTunnel(this.deps.pipeline, { listener: "explicit", clientAddress: client, identity, connection: socket }, target, state);
      eventId = plan.eventId;
      const upstream = await dialChecked(plan.destination, { timeoutMs: this.deps.connectTimeoutMs });
      upstream.on("error", () => socket.destroy());
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
      socket.on("error", () => upstream.destroy()).once("close", () => upstream.destroy());
      (socket as net.Socket).setTimeout(this.deps.tunnelIdleTimeoutMs, () => socket.destroy());
      closeAfter(socket, this.lifetimeFor(plan.auth));
      socket.pipe(upstream).pipe(socket);
      logDecision(this.deps.log, {
        eventId,
        listener: "explicit",
        client,
        method: "CONNECT",
        url: `${target.host}:${target.port}`,
        taskId: plan.auth.taskId,
        agentId: plan.auth.agentId,
        service: plan.descriptor?.id ?? null,
        operations: ["tunnel"],
        effect: plan.effect,
        decision: "allow",
        reason: plan.why?.reason,
        ruleId: plan.why?.ruleId ?? null,
        status: 200,
        destination: plan.destination.address,
        auditEventId: eventId,
      });
    } catch (error) {
      const refusal = error instanceof ProxyRefusal ? error : new ProxyRefusal("bad_gateway", "upstream_unreachable", "the upstream could not be reached");
      // A failed dial follows a recorded decision: the refusal names that event.
      if (refusal.auditEventId === null && eventId) refusal.auditEventId = eventId;
      writeRawRefusal(socket, refusal);
      logDecision(this.deps.log, refusalLine(refusal, { eventId: eventId ?? refusal.auditEventId, method: "CONNECT", url: `${target.host}:${target.port}`, client, listener: "explicit" }));
    }
  }
}
