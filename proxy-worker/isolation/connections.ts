/**
 * Every open sandbox connection (keep-alive HTTP, intercepted TLS, raw tunnels), by task and
 * sandbox, so that ending, expiring or revoking a task, suspending its agent or stopping the
 * sandbox closes what is open within a second, not only the next request. The interface is small
 * on purpose: the explicit path's per-task registry can implement the same one.
 */
import type { Duplex } from "node:stream";

export interface ConnectionOwner {
  taskId: string;
  sandboxId: string;
}

export interface TaskConnectionRegistry {
  add(owner: ConnectionOwner, socket: Duplex): void;
  /** Closes every connection whose owner `keep` rejects; returns how many were closed. */
  closeWhere(keep: (owner: ConnectionOwner) => boolean): number;
  size(): number;
  /** Open connections of one sandbox. */
  countFor(sandboxId: string): number;
}

export class SandboxConnections implements TaskConnectionRegistry {
  private readonly open = new Map<Duplex, ConnectionOwner>();
  /** Open connections per sandbox, kept as they come and go (the listener asks at every accept). */
  private readonly counts = new Map<string, number>();

  add(owner: ConnectionOwner, socket: Duplex): void {
    if (this.open.has(socket)) return;
    this.open.set(socket, owner);
    this.counts.set(owner.sandboxId, (this.counts.get(owner.sandboxId) ?? 0) + 1);
    socket.once("close", () => this.remove(socket));
  }

  closeWhere(keep: (owner: ConnectionOwner) => boolean): number {
    let closed = 0;
    for (const [socket, owner] of this.open) {
      if (keep(owner)) continue;
      this.remove(socket);
      socket.destroy();
      closed++;
    }
    return closed;
  }

  size(): number {
    return this.open.size;
  }

  countFor(sandboxId: string): number {
    return this.counts.get(sandboxId) ?? 0;
  }

  private remove(socket: Duplex): void {
    const owner = this.open.get(socket);
    if (!owner) return;
    this.open.delete(socket);
    const n = (this.counts.get(owner.sandboxId) ?? 1) - 1;
    if (n <= 0) this.counts.delete(owner.sandboxId);
    else this.counts.set(owner.sandboxId, n);
  }
}
