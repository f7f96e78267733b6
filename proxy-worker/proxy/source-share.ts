/**
 * Each source's share of a listener's connections before they authenticate. A listener holds at
 * most BULKHEAD_MAX_CONNECTIONS (4,096) connections, and a connection that has not authenticated
 * yet is held until its head timeout (up to 20 s) whatever it sends: without a share, one client
 * (one address) could open the whole cap and keep every other agent out. A source (an IPv4
 * address, an IPv6 /64, as the refusal audit keys clients) holds at most `perSource` connections
 * that have not authenticated (a new one beyond that closes the source's oldest such connection);
 * a connection leaves its source's count as soon as it authenticates
 * (its first authenticated request or CONNECT registers it under a task: ConnectionRegistry), from
 * when the task's and agent's own connection caps (limits.ts) bound it instead, or when it closes.
 */
import type { Duplex } from "node:stream";
import { clientKey } from "./refusal-audit";

export interface SourceShareStats {
  /** Sources holding unauthenticated connections now. */
  sources: number;
  /** Unauthenticated connections counted now. */
  unauthenticated: number;
  /** Connections closed to make room for a newer one from their source, since the start. */
  evicted: number;
}

/** What admitting a connection did: the source's oldest unauthenticated connection it pushed out, if any. */
export type Admission = { evicted: null } | { evicted: Duplex; key: string; open: number };

export class SourceShare {
  /** Each source's unauthenticated connections, oldest first (a Set keeps insertion order). */
  private readonly open = new Map<string, Set<Duplex>>();
  /** Connections still counted, by socket: their source's key. */
  private readonly counted = new WeakMap<Duplex, string>();
  private unauthenticated = 0;
  private evictedTotal = 0;

  constructor(readonly perSource: number) {}

  /**
   * Counts `socket` for its source (`address`, the peer's address). A source that already holds
   * its share loses its oldest connection that has not authenticated (returned: the caller closes
   * it), never the new one: an idle connection cannot keep a newer one out, so a client that fills
   * the share with connections it never uses cannot stop another agent behind the same address
   * from connecting and authenticating (a real client sends its request at once, and leaves the
   * count then). Released when it authenticates or closes.
   */
  admit(socket: Duplex, address: string): Admission {
    const key = clientKey(address);
    let sockets = this.open.get(key);
    if (!sockets) this.open.set(key, (sockets = new Set()));
    let admission: Admission = { evicted: null };
    if (sockets.size >= this.perSource) {
      const oldest = sockets.values().next().value as Duplex;
      admission = { evicted: oldest, key, open: sockets.size };
      this.release(oldest);
      this.evictedTotal++;
    }
    sockets.add(socket);
    this.unauthenticated++;
    this.counted.set(socket, key);
    socket.once("close", () => this.release(socket));
    return admission;
  }

  /** `socket` authenticated: it no longer counts against its source. Idempotent. */
  authenticated(socket: Duplex): void {
    this.release(socket);
  }

  private release(socket: Duplex): void {
    const key = this.counted.get(socket);
    if (key === undefined) return;
    this.counted.delete(socket);
    this.unauthenticated--;
    const sockets = this.open.get(key);
    sockets?.delete(socket);
    if (sockets && sockets.size === 0) this.open.delete(key);
  }

  stats(): SourceShareStats {
    return { sources: this.open.size, unauthenticated: this.unauthenticated, evicted: this.evictedTotal };
  }
}
