import type { Duplex } from "node:stream";
import type { Authority } from "../identity/token-verifier";

/** Whose a client connection is. A keep-alive connection may carry requests of several owners. */
export type ConnectionOwner = Authority;

/** One client connection; sockets layered on it (TLS over a CONNECT socket) share its entry. */
interface Entry {
  sockets: Set<Duplex>;
  owners: ConnectionOwner[];
  /** Requests still being decided on this connection: they get their refusal before it closes. */
  busy: number;
  closing: boolean;
  /** Why it is closing (the kill switch's reason: `agent_suspended`, `task_revoked`, ...). */
  reason: string | null;
}

export interface ConnectionRegistryOptions {
  /**
   * Asked when a connection is registered: the reason its owner may no longer act, or null.
   * A revocation that arrived between authentication and registration still closes it.
   */
  revoked?: (owner: ConnectionOwner) => string | null;
  /**
   * How long a request being decided may take to be answered before its connection is cut (5 s).
   * Its refusal is audited before it is sent, and that write can take seconds on a machine whose
   * disk is saturated (the connection was then cut with no answer at all). Nothing is forwarded
   * in the meantime: a request whose decision ends on a closing connection is refused
   * (`closedBecause`), and one that ends after the cut finds its socket destroyed.
   */
  graceMs?: number;
  /**
   * Told of each socket of a connection when it is registered under an owner it did not have:
   * the connection has authenticated (the listeners' per-source share stops counting it).
   */
  onOwned?: (socket: Duplex) => void;
}

/**
 * Every open client connection of the worker, by task, agent and jti, so that a kill switch
 * closes what is open: keep-alive connections, intercepted tunnels, passthrough tunnels and
 * sandbox connections alike. Closing destroys the sockets at once, unless a request on the
 * connection is still being decided (a held request, say), in which case that request is answered
 * (with its refusal) first and the connection closes right after, or after `graceMs` at the
 * latest. Entries leave the registry when their sockets close.
 */
export class ConnectionRegistry {
  private readonly entries = new Map<Duplex, Entry>();
  /** Whose a connection is known to be before it authenticates (a sandbox's, by its address): ownerOf only. */
  private readonly presumed = new WeakMap<Duplex, ConnectionOwner>();
  private readonly byTask = new Map<string, Set<Entry>>();
  private readonly byAgent = new Map<string, Set<Entry>>();
  private readonly byJti = new Map<string, Set<Entry>>();
  private readonly graceMs: number;

  constructor(private readonly options: ConnectionRegistryOptions = {}) {
    this.graceMs = options.graceMs ?? 5_000;
  }

  /**
   * Records that `socket` acts for `owner`. Registering an owner that is already revoked closes
   * the connection at once (a revocation that arrived between authentication and registration).
   */
  register(socket: Duplex, owner: ConnectionOwner): void {
    const entry = this.ensure(socket);
    if (!entry) return;
    if (!entry.owners.some((o) => o.taskId === owner.taskId && o.agentId === owner.agentId && o.jti === owner.jti)) {
      entry.owners.push(owner);
      index(this.byTask, owner.taskId, entry);
      index(this.byAgent, owner.agentId, entry);
      if (owner.jti !== null) index(this.byJti, owner.jti, entry);
      if (this.options.onOwned) for (const s of entry.sockets) this.options.onOwned(s);
    }
    const revoked = entry.closing ? null : (this.options.revoked?.(owner) ?? null);
    if (revoked) this.close(entry, revoked);
  }

  /**
   * `top` is layered on `under` (a TLS socket over its CONNECT tunnel or sandbox connection, an
   * upstream socket a passthrough tunnel is piped to): they are one connection and close together.
   */
  layer(top: Duplex, under: Duplex): void {
    const entry = this.ensure(under);
    if (entry && !this.entries.has(top)) this.attach(top, entry);
  }

  /**
   * Marks a request on `socket` as being decided; call the returned function once it has been
   * answered (its response finished). A connection closed meanwhile is destroyed then (or after
   * the grace period).
   */
  busy(socket: Duplex): () => void {
    const entry = this.ensure(socket);
    if (!entry) return () => undefined;
    entry.busy++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.busy--;
      if (entry.closing && entry.busy === 0) destroy(entry);
    };
  }

  /**
   * Why the connection `socket` belongs to is being closed by a kill switch, or null if it is not.
   * A request whose decision ends on such a connection is refused with this reason, never forwarded:
   * its authority was confirmed before the kill switch was pulled, but nothing leaves after it.
   */
  closedBecause(socket: Duplex): string | null {
    const entry = this.entries.get(socket);
    return entry?.closing ? (entry.reason ?? "closed") : null;
  }

  closeTask(taskId: string): number {
    return this.closeAll(this.byTask.get(taskId), "task_revoked");
  }

  closeAgent(agentId: string): number {
    return this.closeAll(this.byAgent.get(agentId), "agent_suspended");
  }

  closeJti(jti: string): number {
    return this.closeAll(this.byJti.get(jti), "jti_revoked");
  }

  /** Closes every connection one of whose owners has a reason to be closed (`reasonFor` is not null). */
  closeWhere(reasonFor: (owner: ConnectionOwner) => string | null): number {
    let n = 0;
    for (const entry of new Set(this.entries.values())) {
      if (entry.closing) continue;
      let reason: string | null = null;
      for (const owner of entry.owners) if ((reason = reasonFor(owner))) break;
      if (!reason) continue;
      this.close(entry, reason);
      n++;
    }
    return n;
  }

  /**
   * Who the connection `socket` belongs to (or is layered on) last acted for: the owner of its
   * latest authenticated request or CONNECT, or null for a connection that never authenticated.
   * A refusal the listener itself makes on such a connection (a parse error between two requests,
   * an upgrade, a TLS handshake inside a CONNECT tunnel) is audited under that task and agent.
   */
  ownerOf(socket: Duplex): ConnectionOwner | null {
    const entry = this.entries.get(socket);
    const owner = entry?.owners.at(-1);
    if (owner) return owner;
    for (const s of entry ? entry.sockets : [socket]) {
      const presumed = this.presumed.get(s);
      if (presumed) return presumed;
    }
    return null;
  }

  /**
   * `socket` is known to be `owner`'s before any request authenticates it (a bound sandbox's
   * connection, by its source address): `ownerOf` says so, so a refusal before its first request
   * (a failed TLS handshake, a request that does not parse) is audited under that task and agent.
   * Nothing else: it is not registered (a task that has ended still gets its 407 at the request).
   */
  presume(socket: Duplex, owner: ConnectionOwner): void {
    this.presumed.set(socket, owner);
  }

  /** Open connections (not sockets: a tunnel and its TLS layer count once). */
  get size(): number {
    return new Set(this.entries.values()).size;
  }

  private closeAll(entries: Set<Entry> | undefined, reason: string): number {
    if (!entries) return 0;
    let n = 0;
    for (const entry of [...entries]) {
      if (entry.closing) continue;
      this.close(entry, reason);
      n++;
    }
    return n;
  }

  private close(entry: Entry, reason: string): void {
    entry.reason = reason;
    if (entry.busy === 0) {
      destroy(entry);
      return;
    }
    entry.closing = true;
    setTimeout(() => destroy(entry), this.graceMs).unref();
  }

  /** The socket's entry, created on first use; null for a socket that is already gone. */
  private ensure(socket: Duplex): Entry | null {
    const known = this.entries.get(socket);
    if (known) return known;
    if (socket.destroyed) return null;
    const entry: Entry = { sockets: new Set(), owners: [], busy: 0, closing: false, reason: null };
    this.attach(socket, entry);
    return entry;
  }

  private attach(socket: Duplex, entry: Entry): void {
    if (socket.destroyed) return;
    entry.sockets.add(socket);
    this.entries.set(socket, entry);
    socket.once("close", () => this.forget(socket));
    if (entry.closing && entry.busy === 0) socket.destroy();
  }

  private forget(socket: Duplex): void {
    const entry = this.entries.get(socket);
    if (!entry) return;
    this.entries.delete(socket);
    entry.sockets.delete(socket);
    if (entry.sockets.size > 0) return;
    // The last socket of the connection closed: its layers go with it.
    for (const owner of entry.owners) {
      unindex(this.byTask, owner.taskId, entry);
      unindex(this.byAgent, owner.agentId, entry);
      if (owner.jti !== null) unindex(this.byJti, owner.jti, entry);
    }
  }
}

/**
 * The task and agent a connection last authenticated as (null before its first authenticated
 * request): what a refusal made on it is audited under, so it shows in that task's audit.
 */
export function connectionAuth(deps: { connections?: Pick<ConnectionRegistry, "ownerOf"> }, socket: Duplex): { taskId: string; agentId: string } | null {
  const owner = deps.connections?.ownerOf(socket) ?? null;
  return owner ? { taskId: owner.taskId, agentId: owner.agentId } : null;
}

function destroy(entry: Entry): void {
  entry.closing = true;
  for (const socket of [...entry.sockets]) socket.destroy();
}

function index(map: Map<string, Set<Entry>>, key: string, entry: Entry): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(entry);
}

function unindex(map: Map<string, Set<Entry>>, key: string, entry: Entry): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(entry);
  if (set.size === 0) map.delete(key);
}
