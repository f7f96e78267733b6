/**
 * `bulkhead keys rotate-master`: moves every sealed value to a new master key, resumably.
 *
 * 1. The new key is staged durably in the data folder (`master.key.next`, fsynced) and its
 *    fingerprint recorded in the database before any row changes.
 * 2. Every sealed value is resealed row by row under the new key's process keys; each value names
 *    the key it is sealed with, so a re-run (after a kill, a crash, a lost connection) skips what
 *    is done and continues with the rest, opening old values with the old key.
 * 3. Switch-over, in one transaction under the exclusive keys lock (writers hold it shared): rows
 *    that writers with the old keys committed meanwhile are resealed, every value is proven to
 *    open with the new keys, and the recorded generation and master fingerprint switch. From then
 *    on a process still holding old keys is refused when it tries to write.
 * 4. Only then is the old key retired: the key file is replaced by the new key in one rename (or,
 *    when the key comes from BULKHEAD_MASTER_KEY, the operator is told to set the new one), and
 *    the old checkpoint verification key is kept in the data folder for `audit verify`.
 *
 * Running processes hold keys derived from the old master key: restart Bulkhead afterwards (the
 * launcher refuses to start while a rotation is unfinished). Messages carry fingerprints only.
 */
import { unlinkSync } from "node:fs";
import path from "node:path";
import { checkpointVerificationKey, type CheckpointKey } from "@/lib/audit/checkpoints";
import { approvalSealKey, sealApproval, sealMatches } from "@/lib/approvals/seal";
import type { Prisma } from "@/lib/generated/prisma/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { generateMasterKey, keyFingerprint, parseMasterKey } from "@/lib/crypto/envelope";
import type { Db } from "@/lib/db/client";
import { connectForMigration } from "@/lib/db/migrate";
import { AppError } from "@/lib/errors/app-error";
import {
  MASTER_KEY_NEXT_FILE,
  readMasterFingerprint,
  readStagedFingerprint,
  readStagedMasterKey,
  STAGED_FINGERPRINT_SETTING,
  writeMasterFingerprint,
  type ResolvedMasterKey,
} from "@/lib/identity/master-key";
import { replaceFileDurably, writeSecretFileDurably } from "@/lib/files/secrets";
import { KEYS_LOCK, writeKeyGeneration } from "./generation";
import { deriveProcessKeys, keyGeneration } from "./process-keys";
import { resealAll, type ResealPlan } from "./reseal";
import { reportVerificationKey } from "@/lib/reports/signature";
import { retireCheckpointKey, retireReportKey } from "./retired-checkpoint-keys";

export interface RotateMasterOptions {
  db: Db;
  dataDir: string;
  /** The master key in use (BULKHEAD_MASTER_KEY or the data folder's key file). */
  current: ResolvedMasterKey;
  actor: Actor;
  onResealed?: ResealPlan["onResealed"];
  now?: () => Date;
}

export interface RotateMasterResult {
  from: string;
  to: string;
  /** Rows resealed by this run, by column label. */
  resealed: Record<string, number>;
  /** Where the new master key is. */
  keyFile: string;
  /** The key in use came from BULKHEAD_MASTER_KEY: the operator must set it to the new key. */
  setEnvironment: boolean;
  /** Verifies checkpoints signed before the rotation; kept in the data folder. */
  retiredCheckpointKey: CheckpointKey;
}

/** One rotation at a time (a session lock: released when the process dies). */
const ROTATION_LOCK = 72707373;

/** Holds the rotation lock on its own connection until the returned function is called. */
export async function holdRotationLock(databaseUrl: string): Promise<() => Promise<void>> {
  const client = await connectForMigration(databaseUrl);
  const { rows } = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [ROTATION_LOCK]);
  if (!rows[0]?.ok) {
    await client.end();
    throw new AppError("CONFLICT", "Another master-key rotation is running against this database; let it finish.");
  }
  return async () => {
    await client.end().catch(() => undefined);
  };
}

function add(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** The staged key, creating it (durably, before any row changes) when there is none. */
function stageKey(dataDir: string): { key: Buffer; file: string } {
  const existing = readStagedMasterKey(dataDir);
  if (existing) return existing;
  const file = path.join(dataDir, MASTER_KEY_NEXT_FILE);
  const text = generateMasterKey();
  writeSecretFileDurably(file, `${text}\n`);
  return { key: parseMasterKey(text), file };
}

export async function rotateMasterKey(o: RotateMasterOptions): Promise<RotateMasterResult> {
  assertCan(o.actor, "settings:write");
  const now = o.now ?? (() => new Date());
  const currentFp = keyFingerprint(o.current.key);
  const dataFp = await readMasterFingerprint(o.db);
  if (dataFp === null) throw new AppError("CONFLICT", "No master key is recorded for this database yet: start Bulkhead once first.");
  let staged = readStagedMasterKey(o.dataDir);

  if (dataFp !== currentFp) {
    // An earlier run switched the data over and stopped before retiring the old key.
    if (staged && keyFingerprint(staged.key) === dataFp) return finish(o, staged, {}, now());
    throw new AppError("CONFIG", `The master key (fingerprint ${currentFp}) is not the one the data is sealed under (${dataFp}). Nothing was changed.`);
  }
  if (staged && keyFingerprint(staged.key) === currentFp) {
    // Left over from a finished rotation whose key is now configured: it is the current key.
    unlinkSync(staged.file);
    staged = null;
  }
  const pending = await readStagedFingerprint(o.db);
  if (pending !== null && (!staged || keyFingerprint(staged.key) !== pending)) {
    throw new AppError(
      "CONFIG",
      `A rotation to master key ${pending} was started, but ${path.join(o.dataDir, MASTER_KEY_NEXT_FILE)} is missing or holds another key. ` +
        "Values already resealed need that key: restore the file, then run this command again. Nothing was changed.",
    );
  }
  // A staged file with no rotation recorded comes from a run stopped before any row changed: reuse it.
  staged ??= stageKey(o.dataDir);
  const stagedKey = staged;
  const to = deriveProcessKeys(stagedKey.key);
  if (pending === null) {
    await o.db.$transaction(async (tx) => {
      await tx.setting.upsert({ where: { key: STAGED_FINGERPRINT_SETTING }, create: { key: STAGED_FINGERPRINT_SETTING, value: to.masterFingerprint }, update: { value: to.masterFingerprint } });
      await recordAuditEvent(tx, { type: "master_key.rotation_started", actor: o.actor, data: { from: currentFp, to: to.masterFingerprint } });
    });
  }

  const plan: ResealPlan = { to, from: [deriveProcessKeys(o.current.key)], legacyMasters: [o.current.key], onResealed: o.onResealed };
  const first = await resealAll(o.db, plan);
  const late = await o.db.$transaction(
    async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${KEYS_LOCK})`;
      const rest = await resealAll(tx, { ...plan, verify: true, onResealed: undefined });
      // Approvals' seals are HMACs under a key derived from the worker's: renewed here, under the
      // lock, so that held 202-and-poll requests can still be released after the restart.
      const seals = await resealApprovals(tx, approvalSealKey(plan.from[0]!.workerKey.privateKey), approvalSealKey(to.workerKey.privateKey));
      if (seals > 0) rest.resealed["approval seal"] = (rest.resealed["approval seal"] ?? 0) + seals;
      await writeKeyGeneration(tx, keyGeneration(to));
      await writeMasterFingerprint(tx, to.masterFingerprint);
      await tx.setting.deleteMany({ where: { key: STAGED_FINGERPRINT_SETTING } });
      await recordAuditEvent(tx, { type: "master_key.rotated", actor: o.actor, data: { from: currentFp, to: to.masterFingerprint, resealed: add(first.resealed, rest.resealed) } });
      return rest;
    },
    { maxWait: 60_000, timeout: 10 * 60_000 },
  );
  return finish(o, stagedKey, add(first.resealed, late.resealed), now());
}

/** Retires the old key once nothing uses it. Safe to repeat. */
function finish(o: RotateMasterOptions, staged: { key: Buffer; file: string }, resealed: Record<string, number>, at: Date): RotateMasterResult {
  const old = deriveProcessKeys(o.current.key);
  const retiredCheckpointKey = checkpointVerificationKey(old.checkpointKey);
  retireCheckpointKey(o.dataDir, retiredCheckpointKey, at);
  // The report key derives from the master key too: reports signed before the rotation still verify.
  retireReportKey(o.dataDir, reportVerificationKey(old.reportKey), at);
  const result = { from: old.masterFingerprint, to: keyFingerprint(staged.key), resealed, retiredCheckpointKey };
  if (o.current.source === "environment" || !o.current.file) {
    return { ...result, keyFile: staged.file, setEnvironment: true };
  }
  // One rename replaces the old key with the new one; the old key is gone once nothing needs it.
  replaceFileDurably(staged.file, o.current.file);
  return { ...result, keyFile: o.current.file, setEnvironment: false };
}

/**
 * Moves the seals of approvals that can still release a request (pending, approved) from the
 * worker key of the old master key to the new one's: the seal key derives from the worker's key
 * (lib/approvals/seal.ts), so a 202-and-poll grant held across a rotation was refused as never
 * sealed by Bulkhead. Only a seal that verifies under the old key is renewed (what no worker
 * sealed stays unsealed); one already under the new key is left as it is, so a re-run is harmless.
 */
async function resealApprovals(tx: Prisma.TransactionClient, from: Buffer, to: Buffer): Promise<number> {
  const rows = await tx.approval.findMany({
    where: { status: { in: ["pending", "approved"] }, seal: { not: null } },
    select: { id: true, taskId: true, agentId: true, jti: true, requestDigest: true, method: true, url: true, actions: true, reason: true, requestHeaders: true, requestBody: true, requiredApprovals: true, seal: true },
  });
  let resealed = 0;
  for (const row of rows) {
    const approval = { ...row, requestBody: row.requestBody ? new Uint8Array(row.requestBody) : null };
    if (sealMatches(to, approval, row.seal) || !sealMatches(from, approval, row.seal)) continue;
    await tx.approval.update({ where: { id: row.id }, data: { seal: sealApproval(to, approval) } });
    resealed++;
  }
  return resealed;
}
