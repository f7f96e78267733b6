import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";

const WINDOW_MS = 60_000;

interface Window {
  start: number;
  /** Failures after the first in this window, not yet written. */
  folded: number;
}

/**
 * `api_key.auth_failed` events on a budget. A key's prefix is not a secret (it is in the
 * `api_key.created` event and on the API keys page), so anyone can present a real prefix with a
 * wrong secret, unauthenticated; every audit insert takes the hash chain's head lock, so one
 * event per attempt would let them grind the audit (and every audited change) down. As for
 * sign-in failures (lib/auth/sign-in-audit.ts): per key and reason, the first failure in a
 * minute is written as its own event, the rest are counted, and one
 * `api_key.auth_failures_summarised` event per key and reason reports the count when the window
 * ends (on the next failure after it, or the minute timer). Reasons are a fixed handful, so a key
 * costs at most a few events a minute per process, however many requests are sent.
 */
export class ApiKeyFailureAudit {
  private readonly windows = new Map<string, Window & { apiKeyId: string; reason: string }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: Db) {}

  async record(apiKeyId: string, reason: string, now = Date.now()): Promise<void> {
    const id = `${apiKeyId}\u0000${reason}`;
    const window = this.windows.get(id);
    if (window && now - window.start < WINDOW_MS) {
      window.folded += 1;
      return;
    }
    this.startTimer();
    if (window) await this.summarise(window, now);
    this.windows.set(id, { apiKeyId, reason, start: now, folded: 0 });
    await recordAuditEvent(this.db, { type: "api_key.auth_failed", actor: { actorType: "api_key", actorId: apiKeyId }, outcome: "deny", reason });
  }

  /** Writes the summaries of the windows that have ended (all of them with `all`), and forgets those windows. */
  async flush(now = Date.now(), all = false): Promise<void> {
    for (const [id, window] of [...this.windows]) {
      if (!all && now - window.start < WINDOW_MS) continue;
      this.windows.delete(id);
      await this.summarise(window, now);
    }
  }

  private async summarise(window: Window & { apiKeyId: string; reason: string }, now: number): Promise<void> {
    if (window.folded === 0) return;
    const folded = window.folded;
    window.folded = 0;
    await recordAuditEvent(this.db, {
      type: "api_key.auth_failures_summarised",
      actor: { actorType: "api_key", actorId: window.apiKeyId },
      outcome: "deny",
      reason: `${folded} more failed authentication${folded === 1 ? "" : "s"} (${window.reason}) within a minute`,
      data: { failures: folded, reason: window.reason, from: new Date(window.start).toISOString(), to: new Date(now).toISOString() },
    });
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.flush().catch((error: unknown) => console.error("Could not write the API key failure summary", error));
    }, WINDOW_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

const perDatabase = new WeakMap<Db, ApiKeyFailureAudit>();

/** The process's budgeted API key failure audit for `db`. */
export function apiKeyFailureAudit(db: Db): ApiKeyFailureAudit {
  let audit = perDatabase.get(db);
  if (!audit) {
    audit = new ApiKeyFailureAudit(db);
    perDatabase.set(db, audit);
  }
  return audit;
}
