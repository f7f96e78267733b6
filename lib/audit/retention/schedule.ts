/**
 * The launcher runs retention once a day when BULKHEAD_AUDIT_RETENTION_DAYS is set, as the owner
 * role (which it alone holds among Bulkhead's processes): the first run a minute after start, so
 * that the checkpoint signer has published the head, then every 24 hours. A failed run is
 * reported and tried again the next day; it removes nothing it has not archived and verified.
 */
import { checkpointVerificationKey } from "../checkpoints";
import { DirectoryCheckpointSink } from "../outside/directory";
import type { SignerKey } from "../outside/signer-key";
import { loadAuditCheckpointConfig } from "@/lib/config/audit-checkpoints";
import { loadAuditRetentionConfig } from "@/lib/config/audit-retention";
import { createPrismaClient } from "@/lib/db/client";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { readRetiredCheckpointKeys } from "@/lib/keys/retired-checkpoint-keys";
import { AuditRetentionError } from "./plan";
import { runAuditRetention } from "./run";

const FIRST_RUN_MS = 60_000;
const EVERY_MS = 24 * 3600_000;

export interface RetentionScheduleOptions {
  dataDir: string;
  ownerDatabaseUrl: string;
  /**
   * The checkpoint signer's key: it signs archives' manifests, and its public half, with the
   * master key's format-1 key and retired ones, is what archives are verified with.
   */
  signer: SignerKey;
  master: Buffer;
  say: (line: string) => void;
}

export function startAuditRetentionSchedule(o: RetentionScheduleOptions): { stop(): Promise<void> } | null {
  const config = loadAuditRetentionConfig(o.dataDir);
  if (config.retentionDays === null) return null;
  const keys = [o.signer.publicKey, checkpointVerificationKey(deriveProcessKeys(o.master).checkpointKey), ...readRetiredCheckpointKeys(o.dataDir)];
  const sink = new DirectoryCheckpointSink(loadAuditCheckpointConfig(o.dataDir).sinkDir);
  let running: Promise<void> | null = null;
  const runOnce = () => {
    running ??= (async () => {
      const db = createPrismaClient(o.ownerDatabaseUrl, 1);
      try {
        const r = await runAuditRetention({ db, sink, keys, signerKey: o.signer.seed, retentionDays: config.retentionDays, archiveDir: config.archiveDir, performedBy: "launcher" });
        if (r.state === "removed") o.say(`Audit retention: archived events ${r.plan.fromSeq}-${r.plan.throughSeq} to ${r.archive.file} and removed them; checkpoint ${r.plan.checkpoint.chain.number} kept.`);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        o.say(`Audit retention did not run: ${message}${error instanceof AuditRetentionError ? "" : " (tried again in 24 hours)"}`);
      } finally {
        await db.$disconnect();
        running = null;
      }
    })();
    return running;
  };
  const first = setTimeout(() => void runOnce(), FIRST_RUN_MS);
  const timer = setInterval(() => void runOnce(), EVERY_MS);
  first.unref();
  timer.unref();
  o.say(`Audit retention: events older than ${config.retentionDays} day(s) are archived to ${config.archiveDir} and removed once a day, as whole checkpointed segments.`);
  return {
    async stop() {
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
