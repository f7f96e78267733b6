/**
 * Each source's share of a listener's connections before they authenticate. A listener holds at
 * most BULKHEAD_MAX_CONNECTIONS (4,096) connections, and a connection that has not authenticated
 * yet is held until its head timeout (up to 20 s) whatever it sends: without a share, one client
 * (one address) could open the whole cap and keep every other agent out. A source (an IPv4
 * address, an IPv6 /64, as the refusal audit keys clients) holds at most `perSource` connections
 * that have not authenticated; a connection leaves its source's count as soon as it authenticates
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
  /** Connections closed at their accept because their source held its share, since the start. */
  refused: number;
}

export class SourceShare {
  private readonly open = new Map<string, number>();
  /** Connections still counted, by socket: their source's key. */
  private readonly counted = new WeakMap<Duplex, string>();
  private unauthenticated = 0;
  private refusedTotal = 0;

  constructor(readonly perSource: number) {}

  /**
   * Counts `socket` for its source (`address`, the peer's address) unless the source already
   * holds its share: then false, and the caller closes it. Released when it authenticates or closes.
   */
  admit(socket: Duplex, address: string): { admitted: true } | { admitted: false; key: string; open: number } {
    const key = clientKey(address);
    const open = this.open.get(key) ?? 0;
    if (open >= this.perSource) {
      this.refusedTotal++;
      return { admitted: false, key, open };
    }
    this.open.set(key, open + 1);
    this.unauthenticated++;
    this.counted.set(socket, key);
    socket.once("close", () => this.authenticated(socket));
    return { admitted: true };
  }

  /** `socket` authenticated (or closed): it no longer counts against its source. Idempotent. */
  authenticated(socket: Duplex): void {
    const key = this.counted.get(socket);
    if (key === undefined) return;
    this.counted.delete(socket);
    this.unauthenticated--;
    const n = (this.open.get(key) ?? 1) - 1;
    if (n <= 0) this.open.delete(key);
    else this.open.set(key, n);
  }

  stats(): SourceShareStats {
    return { sources: this.open.size, unauthenticated: this.unauthenticated, refused: this.refusedTotal };
  }
}
