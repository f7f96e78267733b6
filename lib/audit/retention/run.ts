/**
 * `bulkhead audit retention`: plan the segment (plan.ts), write its archive and read it back,
 * and only then remove it and record the marker and an `audit.retention` event, in one
 * transaction as the owner role (docs/audit.md, "Retention").
 */
import { createHash } from "node:crypto";
import { access } from "node:fs/promises";
import path from "node:path";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "../record";
import { checkpointFromRow, checkpointRowColumns, type CheckpointKey, type CheckpointRow } from "../checkpoints";
import type { CheckpointSink } from "../outside/sink";
import { withAuditSnapshot, type AuditDb } from "../sql";
import { CHAIN_COLUMNS, type ChainRow } from "../verify";
import { ARCHIVE_VERSION, archivedCheckpoint, archiveFileName, manifestFileName, type ArchivedEvent, type ArchiveHeader } from "./archive-format";
import { signManifest } from "./archive-manifest";
import { verifyArchiveFile, writeFileAtomically } from "./archive-file";
import { AuditRetentionError, planRetention, type RetentionPlan } from "./plan";

export interface ArchiveWritten {
  file: string;
  manifestFile: string;
  sha256: string;
  size: number;
  /** true when a complete, verified archive of this segment was there already (a rerun). */
  reused: boolean;
}

export type RetentionResult =
  | { state: "off" }
  | { state: "nothing"; reason: string; cutoff: Date }
  | { state: "planned"; plan: RetentionPlan }
  | { state: "removed"; plan: RetentionPlan; archive: ArchiveWritten; removed: bigint };

export interface RunRetentionOptions {
  /** Must connect as the owner role unless dryRun: runtime roles cannot delete audit rows. */
  db: Db;
  sink: CheckpointSink;
  keys: readonly CheckpointKey[];
  /**
   * The checkpoint signer's seed, which signs the archive's manifest (archive-manifest.ts); null
   * when it is not at hand, and then nothing is archived or removed (a dry run needs none).
   */
  signerKey: Buffer | null;
  /** null: retention is off. */
  retentionDays: number | null;
  archiveDir: string;
  dryRun?: boolean;
  /** Who runs it, for the marker and the audit event ("cli", "launcher"). */
  performedBy: string;
  now?: Date;
}

const DAY_MS = 24 * 3600_000;
const PAGE = 5000;

export async function runAuditRetention(options: RunRetentionOptions): Promise<RetentionResult> {
  if (options.retentionDays === null) return { state: "off" };
  const cutoff = new Date((options.now ?? new Date()).getTime() - options.retentionDays * DAY_MS);
  const planned = await planRetention(options.db, { sink: options.sink, keys: options.keys, cutoff });
  if (!planned.plan) return { state: "nothing", reason: planned.reason, cutoff };
  const plan = planned.plan;
  if (options.dryRun) return { state: "planned", plan };
  if (!options.signerKey) {
    throw new AuditRetentionError(
      "refusing to archive: an archive's manifest is signed with the checkpoint signer's key (BULKHEAD_AUDIT_SIGNER_KEY_FILE, default <data dir>/audit-signer.key), and it cannot be read here; run retention where the launcher runs, or let the launcher run it (BULKHEAD_AUDIT_RETENTION_DAYS)",
    );
  }
  const archive = await writeVerifiedArchive(options.db, plan, options.archiveDir, options.keys, options.signerKey);
  const removed = await applyRetention(options.db, plan, archive, options);
  return { state: "removed", plan, archive, removed };
}

/** Writes the segment's archive (or reuses a complete one), reads it back and verifies it. */
async function writeVerifiedArchive(db: AuditDb, plan: RetentionPlan, dir: string, keys: readonly CheckpointKey[], signerKey: Buffer): Promise<ArchiveWritten> {
  const name = archiveFileName(plan.fromSeq, plan.throughSeq);
  const file = path.join(dir, name);
  const manifestFile = manifestFileName(file);
  const existing = await access(manifestFile).then(
    () => verifyArchiveFile(file, keys),
    () => null,
  );
  // One left by a run of an older version (unsigned manifest) is written again, signed.
  if (existing?.ok && existing.manifestSigned && existing.manifest && existing.header?.checkpoint.number === plan.checkpoint.chain.number.toString() && existing.header.anchorPrevHash === plan.anchorPrevHash) {
    return { file, manifestFile, sha256: existing.manifest.sha256, size: existing.manifest.size, reused: true };
  }
  const header: ArchiveHeader = {
    format: "bulkhead-audit-archive",
    version: ARCHIVE_VERSION,
    fromSeq: plan.fromSeq.toString(),
    throughSeq: plan.throughSeq.toString(),
    anchorPrevHash: plan.anchorPrevHash,
    events: plan.events.toString(),
    checkpoint: { number: plan.checkpoint.chain.number.toString(), seq: plan.checkpoint.seq.toString(), hash: plan.checkpoint.hash, keyId: plan.checkpoint.keyId },
  };
  const digest = createHash("sha256");
  let size = 0;
  await writeFileAtomically(file, async (fh) => {
    const put = async (value: unknown) => {
      const bytes = Buffer.from(`${JSON.stringify(value)}\n`, "utf8");
      digest.update(bytes);
      size += bytes.length;
      await fh.write(bytes);
    };
    await put(header);
    await withAuditSnapshot(db, async (sql) => {
      for (let from = plan.fromSeq; from <= plan.throughSeq; from += BigInt(PAGE)) {
        const rows = await sql.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE audit_events.seq >= $1::bigint AND audit_events.seq <= $2::bigint ORDER BY audit_events.seq`, [
          from.toString(),
          minBig(from + BigInt(PAGE) - 1n, plan.throughSeq).toString(),
        ]);
        for (const row of rows) await put(archivedEvent(row));
      }
      const cps = await sql.query<CheckpointRow & { id: string }>(
        `SELECT c.id::text AS id, ${checkpointRowColumns("c")} FROM audit_checkpoints c WHERE c.seq >= $1::bigint AND c.seq <= $2::bigint ORDER BY c.seq, c.id`,
        [plan.fromSeq.toString(), plan.throughSeq.toString()],
      );
      // The segment's own checkpoint last, so a reader meets every event before it.
      const own = plan.checkpoint.chain.number.toString();
      for (const c of [...cps.filter((c) => c.number !== own), ...cps.filter((c) => c.number === own)]) await put(archivedCheckpoint(checkpointFromRow(c)));
    });
  });
  const sha256 = digest.digest("hex");
  const manifest = signManifest(signerKey, {
    format: "bulkhead-audit-archive-manifest",
    file: name,
    sha256,
    size,
    fromSeq: header.fromSeq,
    throughSeq: header.throughSeq,
    events: header.events,
    anchorPrevHash: header.anchorPrevHash,
    checkpoint: header.checkpoint,
    createdAt: new Date().toISOString(),
  });
  await writeFileAtomically(manifestFile, async (fh) => {
    await fh.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
  });
  // Read back from the disk and verify before anything is deleted.
  const check = await verifyArchiveFile(file, keys);
  if (!check.ok) throw new AuditRetentionError(`refusing to remove anything: the archive ${file} does not verify: ${check.problems.join("; ")}`);
  return { file, manifestFile, sha256, size, reused: false };
}

async function applyRetention(db: Db, plan: RetentionPlan, archive: ArchiveWritten, options: RunRetentionOptions): Promise<bigint> {
  return db.$transaction(
    async (tx) => {
      const [row] = await tx.$queryRawUnsafe<Array<{ removed: string }>>(
        "SELECT audit_apply_retention($1::bigint, $2::bigint, $3, $4, $5)::text AS removed",
        plan.throughSeq.toString(),
        plan.checkpoint.chain.number.toString(),
        path.basename(archive.file),
        archive.sha256,
        options.performedBy,
      );
      const removed = BigInt(row!.removed);
      await recordAuditEvent(tx, {
        type: "audit.retention",
        actor: { kind: "system", label: options.performedBy },
        reason: `removed events ${plan.fromSeq}-${plan.throughSeq} older than ${options.retentionDays} day(s), archived first; checkpoint ${plan.checkpoint.chain.number} kept`,
        data: {
          removedFromSeq: plan.fromSeq.toString(),
          throughSeq: plan.throughSeq.toString(),
          firstKeptSeq: (plan.throughSeq + 1n).toString(),
          events: removed.toString(),
          anchorHash: plan.checkpoint.hash,
          checkpointNumber: plan.checkpoint.chain.number.toString(),
          archiveFile: path.basename(archive.file),
          archiveSha256: archive.sha256,
          retentionDays: options.retentionDays,
          cutoff: plan.cutoff.toISOString(),
        },
      });
      return removed;
    },
    { timeout: 10 * 60_000, maxWait: 10_000 },
  );
}

const minBig = (a: bigint, b: bigint) => (a < b ? a : b);

type EventRow = ChainRow & { id: string; recorded_ms: string | null };

const EVENT_COLUMNS = `id::text AS id, ${CHAIN_COLUMNS}, floor(extract(epoch FROM recorded_at) * 1000)::bigint::text AS recorded_ms`;

function archivedEvent(r: EventRow): ArchivedEvent {
  return {
    kind: "event",
    id: r.id,
    seq: r.seq,
    prevHash: r.prev_hash ?? "",
    hash: r.hash ?? "",
    at: new Date(Number(r.at_ms)).toISOString(),
    type: r.type,
    actorType: r.actor_type,
    actorId: r.actor_id,
    agentId: r.agent_id,
    taskId: r.task_id,
    outcome: r.outcome,
    effect: r.effect,
    reason: r.reason,
    ruleId: r.rule_id,
    dataText: r.data_text,
    recordedAt: r.recorded_ms === null ? null : new Date(Number(r.recorded_ms)).toISOString(),
  };
}
