import pg from "pg";
import type { Db } from "@/lib/db/client";
import type { Logger } from "@/lib/log";
import { loadPolicySnapshot, type PolicySnapshot } from "./snapshot";

export const POLICY_CHANNEL = "bulkhead_policy";

export interface PolicyStoreStatus {
  version: number;
  loadedAt: string | null;
  tasks: number;
  /** True when the last refresh failed and the worker enforces its last-known-good snapshot. */
  stale: boolean;
  lastError: string | null;
  listening: boolean;
}

/**
 * Keeps the worker's policy snapshot current: loaded at start, refreshed when Postgres sends a
 * NOTIFY on `bulkhead_policy` (bursts coalesce into one reload), and reconciled periodically in
 * case a notification was missed. When Postgres is away the last-known-good snapshot stays in
 * force; revocations already seen are never dropped, because a failed reload replaces nothing.
 */
export class PolicyStore {
  private snapshot: PolicySnapshot | null = null;
  private version = 0;
  private lastError: string | null = null;
  private stale = false;
  private listener: pg.Client | null = null;
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly listeners: Array<(snapshot: PolicySnapshot) => Promise<void> | void> = [];

  constructor(
    private readonly db: Db,
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly reconcileIntervalMs: number,
  ) {}

  /** Called with every new snapshot before it becomes current (e.g. the token verifier). */
  onSnapshot(listener: (snapshot: PolicySnapshot) => Promise<void> | void): void {
    this.listeners.push(listener);
  }

  current(): PolicySnapshot | null {
    return this.snapshot;
  }

  status(): PolicyStoreStatus {
    return {
      version: this.snapshot?.version ?? 0,
      loadedAt: this.snapshot?.loadedAt.toISOString() ?? null,
      tasks: this.snapshot?.tasks.size ?? 0,
      stale: this.stale,
      lastError: this.lastError,
      listening: this.listener !== null,
    };
  }

  async start(): Promise<void> {
    await this.reload();
    await this.listen();
    this.timer = setInterval(() => {
      void this.reload();
      if (!this.listener) void this.listen();
    }, this.reconcileIntervalMs);
    this.timer.unref();
  }

  /** Coalesces: while a reload runs, further requests schedule exactly one more. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        try {
          const next = await loadPolicySnapshot(this.db, this.version + 1);
          for (const listener of this.listeners) await listener(next);
          this.version = next.version;
          this.snapshot = next;
          if (this.stale) this.log.info({ version: next.version }, "policy source is back; snapshot refreshed");
          this.stale = false;
          this.lastError = null;
        } catch (error) {
          this.stale = this.snapshot !== null;
          this.lastError = error instanceof Error ? error.message : String(error);
          this.log.warn({ err: this.lastError, version: this.snapshot?.version ?? 0 }, "policy reload failed; keeping last-known-good snapshot");
        }
      } while (this.reloadAgain && !this.closed);
    })().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: 5_000 });
    client.on("notification", () => void this.reload());
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
    await this.reloading;
    await this.listener?.end().catch(() => undefined);
    this.listener = null;
  }
}
