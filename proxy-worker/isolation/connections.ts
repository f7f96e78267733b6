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

  add(owner: ConnectionOwner, socket: Duplex): void {
    this.open.set(socket, owner);
    socket.once("close", () => this.open.delete(socket));
  }

  closeWhere(keep: (owner: ConnectionOwner) => boolean): number {
    let closed = 0;
    for (const [socket, owner] of this.open) {
      if (keep(owner)) continue;
      this.open.delete(socket);
      socket.destroy();
      closed++;
    }
    return closed;
  }

  size(): number {
    return this.open.size;
  }

  countFor(sandboxId: string): number {
    let n = 0;
    for (const owner of this.open.values()) if (owner.sandboxId === sandboxId) n++;
    return n;
  }
}
