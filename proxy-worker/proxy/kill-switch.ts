import type { Logger } from "@/lib/log";
import type { CancelReason } from "@/lib/approvals/cancel";
import type { Authority } from "../identity/token-verifier";
import type { ConnectionRegistry } from "./connections";

/** The worker's answer to "may this authority still act?" (TokenVerifier.revoked). */
export type RevocationCheck = (authority: Authority, now?: Date) => "task_revoked" | "task_expired" | "agent_suspended" | "jti_revoked" | null;

/** What the kill switch needs from the hold gate: answer and cancel the holds of revoked authorities. */
export interface CancellableHolds {
  cancelWhere(reasonFor: (authority: Authority) => CancelReason | null): number;
}

/** The cancellation reason recorded for a worker-side revocation. */
export function cancelReasonFor(revoked: NonNullable<ReturnType<RevocationCheck>>): CancelReason {
  switch (revoked) {
    case "agent_suspended":
      return "agent_suspended";
    case "jti_revoked":
      return "token_revoked";
    case "task_expired":
      return "task_expired";
    case "task_revoked":
      return "task_inactive";
  }
}

export interface KillSwitchOptions {
  connections: ConnectionRegistry;
  holds: CancellableHolds;
  revoked: RevocationCheck;
  /** The earliest task expiry still ahead (TokenVerifier.nextTaskExpiry). */
  nextExpiry: (now: Date) => Date | null;
  /** Records expiries in the database (expireTasks), which wakes every other worker too. */
  recordExpiries: (now: Date) => Promise<number>;
  log: Logger;
}

/** Node timers overflow past ~24.8 days; a far expiry is re-armed from an earlier wake-up. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Stops everything a revoked authority still has open, at once: answers and cancels its held
 * requests, then closes its connections. It runs after every policy snapshot (the worker hears of
 * ended tasks, suspended agents and revoked tokens through NOTIFY) and at the moment the earliest
 * task expires (expiry needs no notification: the clock decides), when it also records the
 * expiry in the database so that every worker and the dashboard see it.
 */
export class KillSwitch {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: KillSwitchOptions) {}

  /** Applies the worker's current revocation state to everything open; re-arms the expiry timer. */
  sweep(now = new Date()): { holds: number; connections: number } {
    let holds = 0;
    let connections = 0;
    try {
      holds = this.o.holds.cancelWhere((authority) => {
        const why = this.o.revoked(authority, now);
        return why ? cancelReasonFor(why) : null;
      });
      // Holds first: their requests get a refusal before their connections close.
      connections = this.o.connections.closeWhere((owner) => this.o.revoked(owner, now));
      if (holds || connections) this.o.log.info({ holds, connections }, "kill switch: cancelled held requests and closed connections of revoked tasks");
    } catch (error) {
      // Never let a fault here fail the snapshot reload that called it (revocations still apply).
      this.o.log.error({ err: error instanceof Error ? error.stack : String(error) }, "kill switch sweep failed");
    }
    this.arm(now);
    return { holds, connections };
  }

  private arm(now: Date): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    const next = this.o.nextExpiry(now);
    if (!next) return;
    const delay = Math.min(Math.max(0, next.getTime() - now.getTime()), MAX_TIMER_MS);
    this.timer = setTimeout(() => void this.onExpiry(), delay);
    this.timer.unref();
  }

  private async onExpiry(): Promise<void> {
    const now = new Date();
    this.sweep(now);
    try {
      await this.o.recordExpiries(now);
    } catch (error) {
      // Enforcement does not depend on it: every request compares expiresAt with the clock.
      this.o.log.warn({ err: error instanceof Error ? error.message : String(error) }, "task expiry could not be recorded in the database; it is enforced anyway");
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
