/**
 * Signs the audit chain head every `intervalMs` (default 10 s) so that truncating the tail is
 * detectable: see lib/audit/checkpoints.ts. Several workers may run one each; a worker skips the
 * round when the newest checkpoint already covers the head.
 */
import { writeCheckpoint, type StoredCheckpoint } from "@/lib/audit/checkpoints";
import type { AuditDb } from "@/lib/audit/sql";
import type { Logger } from "@/lib/log";

export interface AuditCheckpointerOptions {
  db: AuditDb;
  /** The Ed25519 seed that signs checkpoints (BULKHEAD_CHECKPOINT_KEY). */
  checkpointKey: Buffer;
  intervalMs?: number;
  log?: Logger;
}

export interface AuditCheckpointer {
  /** Writes one checkpoint now (null when there was nothing new to sign). */
  runOnce(): Promise<StoredCheckpoint | null>;
  /** Rounds finished (whether they signed anything) and checkpoints written. */
  stats(): { rounds: number; written: number };
  stop(): Promise<void>;
}

export function startAuditCheckpointer(options: AuditCheckpointerOptions): AuditCheckpointer {
  let running: Promise<StoredCheckpoint | null> | null = null;
  const counts = { rounds: 0, written: 0 };
  const runOnce = () => {
    running ??= writeCheckpoint(options.db, options.checkpointKey)
      .then((checkpoint) => {
        if (checkpoint) counts.written++;
        return checkpoint;
      })
      .finally(() => {
        counts.rounds++;
        running = null;
      });
    return running;
  };
  const timer = setInterval(() => {
    runOnce().catch((error: unknown) => {
      options.log?.warn({ err: error instanceof Error ? error.message : String(error) }, "audit checkpoint failed; will retry");
    });
  }, options.intervalMs ?? 10_000);
  timer.unref();
  return {
    runOnce,
    stats: () => ({ ...counts }),
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
