/**
 * The sandbox listener: the fence DNATs every TCP connection a sandbox opens, whatever its address
 * and port, to here. For each connection it knows who (source address -> sandbox -> task) and
 * where the agent was going (SO_ORIGINAL_DST), and sniffs the first bytes:
 *   - TLS ClientHello: the SNI must agree with the original destination (the sandbox's resolver
 *     gave it that address for that name; a bare IP is judged as that IP). A passthrough service
 *     is tunnelled as one `tunnel` action; anything else is intercepted with a leaf for the SNI
 *     and each request inside is judged like the explicit path's.
 *   - HTTP: each request's Host must agree with the original destination (name and port).
 *   - anything else, or silence (server-speaks-first protocols): raw TCP, allowed only to a
 *     passthrough service for that destination, as one `tunnel` action.
 */
import { recordedTarget } from "@/lib/semantics/canonical";
import { randomUUID } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import type { Logger } from "@/lib/log";
import type { ServiceMatch } from "@/lib/semantics/registry";
import { dialChecked } from "@/lib/net/dial";
import { parseHost } from "@/lib/net/address";
import { ProxyRefusal } from "../proxy/errors";
import { createProxyServer, guardListener, writeRawRefusal, type ListenerDeps, type ListenerLimits } from "../proxy/explicit-listener";
import type { ConnectionRegistry } from "../proxy/connections";
import { handleProxyRequest, sendRefusal, type HandlerDeps } from "../proxy/handler";
import type { EnforcementState } from "../proxy/enforcement-state";
import type { Pipeline } from "../proxy/pipeline";
import { evaluateTunnel } from "../proxy/tunnel-path";
import type { AuditSink, ReceivedRequest } from "../proxy/types";
import { missingTokenReason, proxyAuthorizationOf, tokenFromProxyAuthorization } from "../proxy/credentials";
import { createInterceptingTlsOptions } from "../tls/leaf-cache";
import type { ResolverMemory } from "./answers";
import { admitWithinCap, refuseOverConnectionCap } from "./connection-cap";
import type { TaskConnectionRegistry } from "./connections";
import type { LeafBudget } from "./leaf-budget";
import { originalDestination, type OriginalDestination } from "./original-destination";
import { whyUnreachable } from "./reachability";
import { Sniffer } from "./sniff";

/** Bytes read while sniffing a TLS connection, replayed to the TLS layer. */
const pending = new WeakMap<net.Socket, Buffer>();

/** A duplex over `socket` that first yields what was already read from it. */
function replaying(socket: net.Socket): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(error, callback) {
      socket.destroy();
      callback(error);
    },
  });
  // What the HTTP layer reads off its connection (the handler records the client's address).
  Object.defineProperty(duplex, "remoteAddress", { value: socket.remoteAddress });
  const head = pending.get(socket);
  pending.delete(socket);
  if (head?.length) duplex.push(head);
  socket.on("data", (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("close", () => duplex.destroy());
  return duplex;
}

interface Binding {
  sandboxId: string;
  taskId: string;
}

interface Ctx {
  binding: Binding;
  source: string;
  dst: OriginalDestination;
  scheme: "http" | "https";
  /** TLS: fixed by the SNI and the original port. */
  authority: { host: string; port: number } | null;
}

export interface SandboxListenerDeps {
  /** The enforcement state in force: bindings, registry, the CA's leaves. */
  state: () => EnforcementState | null;
  pipeline: Pipeline;
  handler: HandlerDeps & ListenerDeps;
  /** The worker's registry of client connections: kill switches close sandbox connections too. */
  registry: ConnectionRegistry;
  audit: AuditSink;
  memory: ResolverMemory;
  connections: TaskConnectionRegistry;
  limits: ListenerLimits;
  /**
   * `perTask`: the most connections one sandbox holds open, counted from the accept (while its
   * first bytes are sniffed, its TLS handshake or first request head is awaited, nothing is
   * authenticated yet, so the task's own budget does not see them); `listener`: per socket.
   */
  connectionCaps: { listener: number; perTask: number };
  /** Per sandbox: how many new leaf certificates its handshakes may have minted. */
  leafBudget: LeafBudget;
  sniffMs: number;
  connectTimeoutMs: number;
  /** No sandbox connection stays open longer (BULKHEAD_TUNNEL_MAX_LIFETIME_SECONDS). */
  maxLifetimeMs: number;
  /** Addresses of Bulkhead itself (gateways): never a destination. */
  ownAddresses: ReadonlySet<string>;
  log: Logger;
}

export class SandboxListener {
  private readonly servers: net.Server[] = [];
  private readonly contexts = new WeakMap<object, Ctx>();
  readonly inner: http.Server;

  constructor(private readonly deps: SandboxListenerDeps) {
    this.inner = createProxyServer(deps.limits, deps.handler, "transparent", (req, res) => this.onRequest(req, res), (_req: http.IncomingMessage, socket: Duplex) =>
      writeRawRefusal(socket, new ProxyRefusal("malformed", "connect_in_sandbox", "inside a sandbox, connect to the destination directly; there is no proxy to CONNECT through")),
    );
  }

  async listen(addresses: readonly string[], port: number): Promise<void> {
    for (const address of addresses) {
      // noDelay as node:http's own servers have it: a response goes out as its head and then its
      // body chunks, and with Nagle's algorithm a chunk written while the head is unacknowledged
      // waits for the client's delayed ACK (tens of milliseconds on Linux).
      const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.onConnection(socket));
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, address, () => resolve());
      });
      guardListener(server, this.deps.handler, "transparent", this.deps.connectionCaps.listener);
      this.servers.push(server);
    }
  }

  private onConnection(socket: net.Socket): void {
    socket.on("error", () => socket.destroy());
    const source = (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    const binding = this.deps.state()?.snapshot.sandboxBindings.get(source);
    const dst = originalDestination(socket);
    if (!binding || !dst) {
      // Not a sandbox (or not redirected): nothing to judge it as. Fail closed.
      socket.destroy();
      return;
    }
    // Before anything is read (connections.ts says why).
    const admitted = admitWithinCap(this.deps.connections, binding, socket, this.deps.connectionCaps.perTask);
    if (!admitted.admitted) return this.refuseOverLimit(socket, binding, source, dst, admitted.open);
    const lifetime = setTimeout(() => socket.destroy(), this.deps.maxLifetimeMs);
    lifetime.unref();
    socket.once("close", () => clearTimeout(lifetime));
    // What was read while sniffing, joined once when decided (the sniffer keeps its own place).
    const read: Buffer[] = [];
    const sniffer = new Sniffer();
    let decided = false;
    const decide = (kind: "tls" | "http" | "raw", serverName: string | null) => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      const data = Buffer.concat(read);
      if (kind !== "tls") socket.unshift(data);
      else pending.set(socket, data);
      const ctx: Ctx = { binding, source, dst, scheme: kind === "tls" ? "https" : "http", authority: null };
      if (kind === "http") {
        this.contexts.set(socket, ctx);
        this.inner.emit("connection", socket);
        socket.resume();
      } else if (kind === "tls") void this.onTls(socket, ctx, serverName);
      else void this.onRaw(socket, ctx);
    };
    const onData = (chunk: Buffer) => {
      read.push(chunk);
      // Only the new bytes are sniffed: re-reading all of them per chunk was quadratic.
      const s = sniffer.push(chunk);
      if (s.kind === "more") return;
      decide(s.kind === "tls" ? "tls" : s.kind === "http" ? "http" : "raw", s.kind === "tls" ? s.serverName : null);
    };
    const timer = setTimeout(() => decide("raw", null), this.deps.sniffMs);
    socket.on("data", onData);
    socket.resume();
  }

  /** Does `host` (a name or an IP literal) agree with where the connection was actually going? */
  private agrees(ctx: Ctx, host: string): boolean {
    const parsed = parseHost(host);
    if (parsed.kind === "ip") return parsed.address === ctx.dst.address;
    if (parsed.kind !== "name") return false;
    return this.deps.memory.agrees(ctx.binding.sandboxId, parsed.name, ctx.dst.address);
  }

  private async onTls(socket: net.Socket, ctx: Ctx, serverName: string | null): Promise<void> {
    const state = this.deps.state();
    const host = serverName ?? ctx.dst.address;
    if (!serverName) {
      return this.refuseRaw(socket, ctx, "tls_without_sni", `TLS to ${ctx.dst.address}:${ctx.dst.port} without a server name cannot be judged or intercepted`);
    }
    if (!this.agrees(ctx, host)) return this.refuseRaw(socket, ctx, "destination_mismatch", this.mismatch(ctx, host));
    // Matched once; a passthrough service (on any of its ports) is tunnelled, anything else intercepted.
    const match = state?.registry.match(host, ctx.dst.port, "https");
    if (state && match && match.kind !== "none" && match.descriptor.proxy.tls === "passthrough") return this.tunnel(socket, ctx, { host, match }, state);
    // No leaf for a destination no request of the task could ever be let through to (judged by
    // the match its requests would get): minting costs the worker a key and a signature per name
    // and evicts other tasks' leaves from the shared cache, and a sandbox may dial any address
    // with that address as its SNI. Refused before the handshake, and audited.
    const unreachable = state ? whyUnreachable(state, ctx.binding.taskId, host, ctx.dst.port, match) : "there is no enforcement state";
    if (unreachable) return this.refuseInBulk(socket, ctx, new ProxyRefusal("denied", "destination_unreachable", unreachable));
    const cache = state?.leaves;
    if (!cache) return void socket.destroy();
    // A new leaf comes out of the sandbox's budget; one already cached does not.
    if (!cache.holds(host) && !this.deps.leafBudget.take(ctx.binding.sandboxId)) {
      const refusal = new ProxyRefusal("rate_limited", "sandbox_certificate_limit", `the sandbox had the proxy make more certificates for new names than its limit allows (BULKHEAD_SANDBOX_LEAVES_PER_MINUTE); no certificate is made for ${host} now`);
      return this.refuseInBulk(socket, ctx, refusal);
    }
    // The ClientHello was read while sniffing; TLS must see it first, so it reads through a stream
    // that replays it (a TLSSocket on the raw socket would read the kernel handle and miss it).
    const tlsSocket = new tls.TLSSocket(replaying(socket), { isServer: true, ...createInterceptingTlsOptions(cache, { expectedServerName: host }) });
    tlsSocket.on("error", () => tlsSocket.destroy());
    // A client that sends its ClientHello and never finishes the handshake does not keep the
    // connection (nothing else would ever close it): closed and audited after the head timeout.
    const slow = setTimeout(() => {
      tlsSocket.destroy();
      socket.destroy();
      void this.record(ctx, "tls_handshake_failed", "the TLS handshake was refused (handshake_timeout)", host.slice(0, 256));
    }, this.deps.limits.headersTimeoutMs);
    slow.unref();
    let secured = false;
    // A client that leaves before its handshake is finished is let go of at once (not counted
    // against its task until the head timeout).
    socket.once("close", () => {
      clearTimeout(slow);
      if (!secured) tlsSocket.destroy();
    });
    tlsSocket.once("secure", () => {
      secured = true;
      clearTimeout(slow);
      this.contexts.set(tlsSocket, { ...ctx, scheme: "https", authority: { host, port: ctx.dst.port } });
      this.inner.emit("connection", tlsSocket);
    });
  }

  private async onRaw(socket: net.Socket, ctx: Ctx): Promise<void> {
    const state = this.deps.state();
    if (!state) return this.tunnel(socket, ctx, { host: ctx.dst.address, match: { kind: "none" } }, null);
    // Raw TCP has no name of its own: the names this sandbox was given for the address, or the IP.
    // Each candidate is matched once; the first passthrough service's name is the one judged.
    const names = this.deps.memory.namesFor(ctx.binding.sandboxId, ctx.dst.address);
    const candidates = (names.length > 0 ? names : [ctx.dst.address]).map((host) => ({ host, match: state.registry.match(host, ctx.dst.port, "https") }));
    const chosen = candidates.find((c) => c.match.kind !== "none" && c.match.descriptor.proxy.tls === "passthrough") ?? candidates[0]!;
    return this.tunnel(socket, ctx, chosen, state);
  }

  /** One `tunnel` action for a passthrough service (refused, and audited, for anything else). */
  private async tunnel(socket: net.Socket, ctx: Ctx, target: { host: string; match: ServiceMatch }, state: EnforcementState | null): Promise<void> {
    if (this.deps.ownAddresses.has(ctx.dst.address)) return this.refuseRaw(socket, ctx, "destination_forbidden", `${ctx.dst.address} is Bulkhead itself`);
    try {
      const client = { listener: "transparent" as const, clientAddress: ctx.source, identity: { kind: "sandbox" as const, sourceAddress: ctx.source }, connection: socket };
      const plan = await evaluateTunnel(this.deps.pipeline, client, { ...target, port: ctx.dst.port }, state);
      this.deps.registry.register(socket, { taskId: plan.auth.taskId, agentId: plan.auth.agentId, jti: plan.auth.jti });
      const upstream = await dialChecked(plan.destination, { timeoutMs: this.deps.connectTimeoutMs });
      // Closed meanwhile (the registry closes an owner already revoked, a kill switch, the
      // client): its "close" has fired already, so the upstream side would stay open.
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      upstream.on("error", () => socket.destroy());
      socket.on("close", () => upstream.destroy());
      upstream.on("close", () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
      socket.resume();
    } catch {
      // evaluateTunnel recorded the refusal; raw protocols get no HTTP answer, only a close.
      socket.destroy();
    }
  }

  private refuseOverLimit(socket: net.Socket, binding: Binding, source: string, dst: OriginalDestination, open: number): void {
    const originalDestination = `${dst.family === 6 ? `[${dst.address}]` : dst.address}:${dst.port}`;
    refuseOverConnectionCap(this.deps.handler.refusals, this.deps.state(), socket, binding, { client: source, open, cap: this.deps.connectionCaps.perTask, originalDestination });
  }

  private mismatch(ctx: Ctx, host: string): string {
    return `the connection names ${host} but was dialled at ${ctx.dst.address}:${ctx.dst.port}, which the sandbox's resolver never gave for that name`;
  }

  /**
   * Closes the connection and audits a refusal a sandbox can cause in bulk through the refusal
   * audit, which aggregates a flood (as for the connection cap) instead of writing an event each.
   */
  private refuseInBulk(socket: net.Socket, ctx: Ctx, refusal: ProxyRefusal): void {
    socket.destroy();
    const agentId = this.deps.state()?.snapshot.tasks.get(ctx.binding.taskId)?.agentId ?? null;
    const data = { eventId: randomUUID(), listener: "transparent", client: ctx.source, sandboxId: ctx.binding.sandboxId, originalDestination: `${ctx.dst.family === 6 ? `[${ctx.dst.address}]` : ctx.dst.address}:${ctx.dst.port}` };
    refusal.context = data;
    void this.deps.handler.refusals.record(refusal, { data, auth: agentId ? { agentId, taskId: ctx.binding.taskId } : null }).catch(() => undefined);
  }

  private async refuseRaw(socket: net.Socket, ctx: Ctx, code: string, reason: string): Promise<void> {
    await this.record(ctx, code, reason);
    socket.destroy();
  }

  private async record(ctx: Ctx, code: string, reason: string, url?: string): Promise<string | null> {
    const task = this.deps.state()?.snapshot.tasks.get(ctx.binding.taskId);
    const eventId = randomUUID();
    try {
      await this.deps.audit.record({
        type: "proxy.decision",
        actorType: "agent",
        actorId: task?.agentId ?? null,
        agentId: task?.agentId ?? null,
        taskId: ctx.binding.taskId,
        outcome: "deny",
        effect: null,
        reason,
        ruleId: null,
        data: { eventId, listener: "transparent", client: ctx.source, sandboxId: ctx.binding.sandboxId, code, kind: "denied", originalDestination: `${ctx.dst.family === 6 ? `[${ctx.dst.address}]` : ctx.dst.address}:${ctx.dst.port}`, url: url === undefined ? null : recordedTarget(url) },
      });
      return eventId;
    } catch {
      return null;
    }
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    void this.judge(req, res).catch((error: unknown) => {
      this.deps.log.error({ err: error instanceof Error ? error.stack : String(error) }, "sandbox request failed");
      sendRefusal(res, new ProxyRefusal("bad_gateway", "internal_error", "the proxy failed to handle the request"));
    });
  }

  private async judge(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const ctx = this.contexts.get(req.socket);
    if (!ctx) return sendRefusal(res, new ProxyRefusal("malformed", "no_tunnel_context", "request arrived on an unknown connection"));
    const target = req.url ?? "";
    const refuse = async (refusal: ProxyRefusal) => {
      refusal.auditEventId = await this.record(ctx, refusal.code, refusal.reason, target.slice(0, 2048));
      sendRefusal(res, refusal);
    };
    // The sandbox is the identity. A token presented as well is verified like any other, and
    // refused unless it belongs to the sandbox's own task (the pipeline checks the binding).
    const presented = proxyAuthorizationOf(req);
    if (Array.isArray(presented)) return refuse(new ProxyRefusal("identity", "token_missing", missingTokenReason(presented)));
    const token = tokenFromProxyAuthorization(presented);
    const identity: ReceivedRequest["identity"] = token ? { kind: "token", token } : { kind: "sandbox", sourceAddress: ctx.source };
    if (!target.startsWith("/")) return refuse(new ProxyRefusal("malformed", "absolute_form_in_sandbox", "inside a sandbox, send origin-form requests (/path)"));
    if (ctx.authority) {
      const { host, port } = ctx.authority;
      const hostPart = host.includes(":") ? `[${host}]` : host;
      return handleProxyRequest(this.deps.handler, req, res, { listener: "transparent", identity, clientAddress: ctx.source, url: `https://${hostPart}:${port}${target}`, tunnelAuthority: ctx.authority });
    }
    const hostHeader = req.headers.host;
    if (!hostHeader) return refuse(new ProxyRefusal("malformed", "host_missing", "a Host header is required"));
    let authority: { host: string; port: number };
    try {
      const u = new URL(`http://${hostHeader}`);
      if (u.pathname !== "/" || u.search || u.username || u.password) throw new Error("not an authority");
      const parsed = parseHost(u.hostname);
      if (parsed.kind === "invalid") throw new Error("invalid host");
      authority = { host: parsed.kind === "ip" ? parsed.address : parsed.name, port: u.port ? Number(u.port) : 80 };
    } catch {
      return refuse(new ProxyRefusal("malformed", "host_invalid", "the Host header is not a valid host[:port]"));
    }
    if (authority.port !== ctx.dst.port || !this.agrees(ctx, authority.host)) {
      return refuse(new ProxyRefusal("denied", "destination_mismatch", this.mismatch(ctx, `${authority.host}:${authority.port}`)));
    }
    const hostPart = authority.host.includes(":") ? `[${authority.host}]` : authority.host;
    return handleProxyRequest(this.deps.handler, req, res, { listener: "transparent", identity, clientAddress: ctx.source, url: `http://${hostPart}:${authority.port}${target}`, tunnelAuthority: authority });
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.inner.closeAllConnections();
  }
}
