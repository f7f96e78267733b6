import pg from "pg";
import type { Db } from "@/lib/db/client";
import type { Logger } from "@/lib/log";
import { parsePolicyChange, type PolicyChange } from "./changes";
import { applyPolicyChanges, MAX_INCREMENTAL_CHANGES } from "./incremental";
import { loadPolicyVersion, type PolicyVersion } from "./snapshot";

export const POLICY_CHANNEL = "bulkhead_policy";

/**
 * A failed load is tried again on its own after this long, doubling up to RETRY_MAX_MS: it may
 * carry a revocation (a `tasks:<id>` heard but not read), and waiting for the next notification
 * or the periodic reconcile (30 s) let the ended task act on meanwhile.
 */
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 2_000;

export interface PolicyStoreStatus {
  version: number;
  loadedAt: string | null;
  tasks: number;
  /** True when the last refresh failed and the worker enforces its last-known-good snapshot. */
  stale: boolean;
  lastError: string | null;
  listening: boolean;
  /** False once a liveness probe of PostgreSQL failed or timed out, until one succeeds again. */
  databaseReachable: boolean;
  /** Snapshots read in full (start, reconcile, fallback) and applied row by row, since start. */
  loads: { full: number; incremental: number };
}

export interface PolicyStoreProbe {
  /** How often PostgreSQL is asked `SELECT 1` on the listening connection. */
  intervalMs: number;
  /** A probe not answered within this counts as PostgreSQL away (a frozen server answers nothing). */
  timeoutMs: number;
}

/**
 * Keeps the worker's policy snapshot current: loaded at start, updated when Postgres sends a
 * NOTIFY on `bulkhead_policy`, and reconciled periodically in case a notification was missed. A
 * notification that names one task, agent, token or credential is applied by reading that row
 * (policy/incremental.ts); any other, or more than MAX_INCREMENTAL_CHANGES at once, reloads
 * everything (bursts coalesce into one reload). When Postgres is away the last-known-good snapshot stays in
 * force; revocations already seen are never dropped, because a failed reload replaces nothing.
 * A liveness probe with a short timeout notices within a couple of seconds when PostgreSQL stops
 * answering (stopped, unreachable, or frozen, where no error ever arrives) and marks the snapshot
 * stale until a reload succeeds again.
 */
export class PolicyStore {
  private snapshot: PolicyVersion | null = null;
  private version = 0;
  private lastError: string | null = null;
  private stale = false;
  /** A load succeeded after the snapshot was stale: probe at once when the loads settle. */
  private recovered = false;
  /** When PostgreSQL last confirmed the snapshot (Date.now()); 0 before the first load. */
  private confirmedAt = 0;
  private listener: pg.Client | null = null;
  private reloading: Promise<void> | null = null;
  /** A full reload was asked for and has not started yet. */
  private fullWanted = false;
  /** Row changes heard since the last load started. */
  private pending: PolicyChange[] = [];
  private readonly loads = { full: 0, incremental: 0 };
  /** An incremental load failed: whatever runs next reads everything. */
  private recoverWithFullLoad = false;
  /** The next try after a failed load, and how long it waits (doubling up to RETRY_MAX_MS). */
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs = RETRY_MIN_MS;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private reachable = true;
  private probeTimer: NodeJS.Timeout | null = null;
  private probing = false;
  private connecting: Promise<void> | null = null;
  /** The probe's settings, and the query it is waiting for. */
  private readonly probe: PolicyStoreProbe & { pending: { client: pg.Client; since: number } | null };
  private readonly listeners: Array<(snapshot: PolicyVersion) => Promise<void> | void> = [];
  private readonly failureListeners: Array<() => void> = [];

  constructor(
    private readonly db: Db,
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly reconcileIntervalMs: number,
    probe: PolicyStoreProbe = { intervalMs: 500, timeoutMs: 1_000 },
  ) {
    this.probe = { ...probe, pending: null };
  }

  /** Called with every new snapshot before it becomes current (e.g. the token verifier). */
  onSnapshot(listener: (snapshot: PolicyVersion) => Promise<void> | void): void {
    this.listeners.push(listener);
  }

  /**
   * Called after a load that failed, also one that failed in a listener after the token verifier
   * had taken its revocations (the kill switch: what is already refused is closed too).
   */
  onLoadFailed(listener: () => void): void {
    this.failureListeners.push(listener);
  }

  current(): PolicyVersion | null {
    return this.snapshot;
  }

  /**
   * How long ago PostgreSQL last confirmed the snapshot in force (ms; 0 before the first load):
   * since the last reload began, or the last liveness probe that found the snapshot fresh was
   * sent (anything committed before it was sent has had its notification heard by its answer). The
   * request path refuses everything once this passes its limit
   * (`BULKHEAD_POLICY_STALE_LIMIT_SECONDS`): a revocation committed just before PostgreSQL stopped
   * answering, or while this process was stalled (its notification not read yet), would otherwise
   * be forwarded past for as long as that lasted.
   */
  unconfirmedForMs(now = Date.now()): number {
    return this.confirmedAt === 0 ? 0 : Math.max(0, now - this.confirmedAt);
  }

  status(): PolicyStoreStatus {
    return {
      version: this.snapshot?.version ?? 0,
      loadedAt: this.snapshot?.loadedAt.toISOString() ?? null,
      tasks: this.snapshot?.tasks.size ?? 0,
      stale: this.stale,
      lastError: this.lastError,
      // Connected is not enough: a listening connection that does not answer hears nothing.
      listening: this.listener !== null && !this.listenerSilent(),
      databaseReachable: this.reachable,
      loads: { ...this.loads },
    };
  }

  /** The liveness probe on the listening connection has waited past its timeout. */
  private listenerSilent(): boolean {
    const pending = this.probe.pending;
    return pending !== null && Date.now() - pending.since > this.probe.timeoutMs;
  }

  async start(): Promise<void> {
    await this.reload();
    await this.listen();
    this.timer = setInterval(() => {
      void this.reload();
      if (!this.listener) void this.listen();
    }, this.reconcileIntervalMs);
    this.timer.unref();
    this.probeTimer = setInterval(() => void this.checkDatabase(), this.probe.intervalMs);
    this.probeTimer.unref();
  }

  /**
   * The liveness probe: `SELECT 1` on the listening connection. Unanswered after `timeoutMs`, the
   * database counts as away (the snapshot is stale) but the connection is kept, so a merely slow
   * server loses no notification and the answer, when it comes, says it is back. A failed query
   * (connection lost) drops the connection; one unanswered for a minute is given up too.
   */
  private async checkDatabase(): Promise<void> {
    if (this.closed) return;
    if (this.probe.pending) {
      const waited = Date.now() - this.probe.pending.since;
      if (waited > 60_000) this.dropListener(this.probe.pending.client);
      // The listening connection does not answer, so notifications may not arrive either (a
      // frozen backend, a connection a firewall dropped without a reset): the snapshot is read
      // in full, through the pool, at every tick until it answers. Before, a task ended now was
      // heard only when the connection was given up, a minute later.
      else if (waited > this.probe.timeoutMs) void this.reload();
      return;
    }
    if (!this.listener) {
      if (this.probing) return;
      this.probing = true;
      try {
        await this.listen();
      } finally {
        this.probing = false;
      }
      if (!this.listener) return this.unreachable(this.lastError ?? "cannot connect to PostgreSQL");
    }
    const client = this.listener;
    const pending = { client, since: Date.now() };
    this.probe.pending = pending;
    // The deadline is its own timer: waiting for the next tick would add up to a whole interval.
    const deadline = setTimeout(() => {
      if (this.probe.pending === pending && !this.closed) this.unreachable(`PostgreSQL did not answer within ${this.probe.timeoutMs} ms`);
    }, this.probe.timeoutMs);
    deadline.unref();
    client.query("SELECT 1").then(
      () => {
        clearTimeout(deadline);
        if (this.probe.pending === pending) this.probe.pending = null;
        // Its answer comes after every notification sent before it: heard, but applied only once
        // the reload they started has finished. While one is waiting or running, the snapshot in
        // force may still lack a revocation the probe's answer vouches for; that reload confirms it.
        const settled = this.reloading === null && this.pending.length === 0 && !this.fullWanted;
        if (this.reachable && !this.stale && this.snapshot !== null && settled) this.confirmedAt = Math.max(this.confirmedAt, pending.since);
        if (!this.reachable) {
          this.reachable = true;
          this.log.info("PostgreSQL answers again; reloading the policy snapshot");
          void this.reload();
        }
      },
      (error: unknown) => {
        clearTimeout(deadline);
        if (this.probe.pending === pending) this.probe.pending = null;
        this.dropListener(client);
        this.unreachable(error instanceof Error ? error.message : String(error));
      },
    );
  }

  private unreachable(message: string): void {
    if (this.reachable) this.log.warn({ err: message, version: this.snapshot?.version ?? 0 }, "PostgreSQL is not answering; enforcing the last-known-good snapshot");
    this.reachable = false;
    // A snapshot that cannot be refreshed is stale: revocations made now would not arrive.
    this.stale = this.snapshot !== null;
    this.lastError = message;
  }

  private dropListener(client: pg.Client): void {
    if (this.listener === client) this.listener = null;
    if (this.probe.pending?.client === client) this.probe.pending = null;
    // Never wait for a frozen server to say goodbye.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    client.end().catch(() => undefined);
  }

  /** A full reload. Coalesces: while a load runs, further requests schedule exactly one more. */
  reload(): Promise<void> {
    this.fullWanted = true;
    return this.drain();
  }

  /** A notification: one row's change applied on its own, or a full reload when it names none. */
  private notified(payload: string | undefined): void {
    const change = parsePolicyChange(payload);
    if (change) this.pending.push(change);
    else this.fullWanted = true;
    void this.drain();
  }

  /** Runs loads one at a time until nothing is wanted; resolves when the work seen so far is in force. */
  private drain(): Promise<void> {
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      while ((this.fullWanted || this.pending.length > 0) && !this.closed) {
        const changes = this.pending;
        const full = this.fullWanted || this.snapshot === null || changes.length > MAX_INCREMENTAL_CHANGES;
        // A full read covers every change heard before it starts.
        this.pending = [];
        this.fullWanted = false;
        try {
          const began = Date.now();
          const next = full ? await loadPolicyVersion(this.db, this.version + 1) : await applyPolicyChanges(this.db, this.snapshot!, changes, this.version + 1);
          for (const listener of this.listeners) await listener(next);
          this.version = next.version;
          this.snapshot = next;
          this.loads[full ? "full" : "incremental"]++;
          if (this.stale) {
            this.log.info({ version: next.version }, "policy source is back; snapshot refreshed");
            this.recovered = true;
          }
          this.stale = false;
          this.reachable = true;
          this.confirmedAt = Math.max(this.confirmedAt, began);
          this.lastError = null;
          this.retryDelayMs = RETRY_MIN_MS;
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          // Said once per outage (and whenever the cause changes), not at every retry.
          const level = this.stale && message === this.lastError ? "debug" : "warn";
          this.stale = this.snapshot !== null;
          this.lastError = message;
          this.log[level]({ err: message, version: this.snapshot?.version ?? 0 }, "policy reload failed; keeping last-known-good snapshot");
          // The changes are not lost: the next load (the retry below, a notification, the probe's
          // recovery or the periodic reconcile) is a full one.
          if (!full) this.recoverWithFullLoad = true;
          for (const listener of this.failureListeners) {
            try {
              listener();
            } catch (failure) {
              this.log.error({ err: failure instanceof Error ? failure.message : String(failure) }, "a listener of a failed policy load failed");
            }
          }
          this.scheduleRetry();
          break;
        }
      }
    })().finally(() => {
      this.reloading = null;
      // A load that began during the outage confirms only as of when it began: a probe sent now
      // confirms the snapshot at once, instead of requests being refused as stale until the next
      // tick. Not while one is still unanswered: that listening connection is being watched (and
      // the snapshot read in full at every tick until it answers, or given up).
      if (this.recovered && !this.closed) {
        this.recovered = false;
        if (!this.probe.pending) void this.checkDatabase();
      }
      if (this.recoverWithFullLoad) {
        this.recoverWithFullLoad = false;
        this.fullWanted = true;
      }
    });
    return this.reloading;
  }

  /**
   * Tries a failed load again soon, whatever else happens: a change that could not be read (an
   * ended task, a revoked token) must not wait for the next notification or the reconcile.
   */
  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed) return;
      this.fullWanted = true;
      void this.drain();
    }, delay);
    this.retryTimer.unref();
  }

  /** One connection attempt at a time (the reconciliation timer and the probe both ask). */
  private listen(): Promise<void> {
    this.connecting ??= this.connectListener().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connectListener(): Promise<void> {
    if (this.closed || this.listener) return;
    const client = new pg.Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: 2_000, keepAlive: true });
    client.on("notification", (message) => this.notified(message.payload));
    client.on("error", (error) => {
      this.log.warn({ err: error.message }, "policy listener lost its connection");
      this.listener = null;
      client.end().catch(() => undefined);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${POLICY_CHANNEL}`);
      this.listener = client;
      // Anything that changed while we were not listening is picked up now.
      void this.reload();
    } catch (error) {
      this.log.warn({ err: error instanceof Error ? error.message : String(error) }, "cannot listen for policy changes yet");
      await client.end().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.probeTimer) clearInterval(this.probeTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.reloading;
    await this.listener?.end().catch(() => undefined);
    this.listener = null;
  }
}
