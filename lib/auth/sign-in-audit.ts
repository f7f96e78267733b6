import type { Db } from "@/lib/db/client";
import type { SignInThrottleConfig } from "@/lib/config/app";
import { AuditBudget, perDatabase } from "@/lib/audit/budget";
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
  private readonly budget: AuditBudget;

  constructor(
    private readonly db: Db,
    private readonly config: SignInThrottleConfig,
    perMinute = 60,
  ) {
    this.budget = new AuditBudget(perMinute, () => this.flush(), "the sign-in audit summary");
  }

  /** Records `event` if the budget allows; otherwise counts it for the next summary. */
  async record(event: AuditEventInput, now = Date.now()): Promise<void> {
    if (this.budget.take(now)) await recordAuditEvent(this.db, event);
  }

  /** Writes one summary event when anything was folded or refused since the last one. */
  async flush(now = new Date()): Promise<void> {
    const folded = this.budget.takeFolded();
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

  stop(): void {
    this.budget.stop();
  }
}

/** The process's budgeted sign-in audit for `db`. */
export const signInAudit = perDatabase((db: Db, config: SignInThrottleConfig) => new SignInAudit(db, config));
