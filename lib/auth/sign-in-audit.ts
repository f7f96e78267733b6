import type { Db } from "@/lib/db/client";
import type { SignInThrottleConfig } from "@/lib/config/app";
import { recordAuditEvent, type AuditEventInput } from "@/lib/audit/record";
import { sweepThrottles } from "./sign-in-throttle";

/**
 * Audit events for failed sign-ins, on a budget. Every audit insert takes the hash chain's head
 * lock, so an unauthenticated client that could cause one insert per attempt could stall every
 * audited change (and the proxy's decisions) by guessing passwords. Three things bound it:
 * - throttled attempts write no event at all; they are counted in their throttle row;
 * - a key writes individual failure events only below its limit, then one event per lock;
 * - per process, at most `perMinute` such events are written per minute; beyond that they are
 *   counted, and one summary event per minute reports how many were folded, together with the
 *   attempts refused on locks that have ended.
 */
export class SignInAudit {
  private windowStart = 0;
  private used = 0;
  private folded = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly config: SignInThrottleConfig,
    private readonly perMinute = 60,
  ) {}

  /** Records `event` if the budget allows; otherwise counts it for the next summary. */
  async record(event: AuditEventInput, now = Date.now()): Promise<void> {
    if (now - this.windowStart >= 60_000) {
      this.windowStart = now;
      this.used = 0;
    }
    this.startTimer();
    if (this.used >= this.perMinute) {
      this.folded += 1;
      return;
    }
    this.used += 1;
    await recordAuditEvent(this.db, event);
  }

  /** Writes one summary event when anything was folded or refused since the last one. */
  async flush(now = new Date()): Promise<void> {
    const folded = this.folded;
    this.folded = 0;
    const refused = await sweepThrottles(this.db, this.config, now);
    const totalRefused = refused.reduce((n, r) => n + r.refused, 0);
    if (folded === 0 && totalRefused === 0) return;
    await recordAuditEvent(this.db, {
      type: "auth.sign_in_failures_summarised",
      actor: { kind: "system", label: "sign-in" },
      outcome: "deny",
      reason: `${folded} failed sign-in${folded === 1 ? "" : "s"} beyond the audit budget, ${totalRefused} attempt${totalRefused === 1 ? "" : "s"} refused while throttled`,
      // The 50 busiest keys; the totals cover all of them.
      data: { foldedFailures: folded, refusedWhileThrottled: totalRefused, keys: refused.sort((a, b) => b.refused - a.refused).slice(0, 50).map((r) => ({ key: r.key, refused: r.refused })) },
    });
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.flush().catch((error: unknown) => console.error("Could not write the sign-in audit summary", error));
    }, 60_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

const perDatabase = new WeakMap<Db, SignInAudit>();

/** The process's budgeted sign-in audit for `db`. */
export function signInAudit(db: Db, config: SignInThrottleConfig): SignInAudit {
  let audit = perDatabase.get(db);
  if (!audit) {
    audit = new SignInAudit(db, config);
    perDatabase.set(db, audit);
  }
  return audit;
}
