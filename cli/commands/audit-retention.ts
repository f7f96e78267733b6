import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { checkpointVerificationKey, type CheckpointKey } from "@/lib/audit/checkpoints";
import { DirectoryCheckpointSink } from "@/lib/audit/outside/directory";
import { loadSignerKey, type SignerKey } from "@/lib/audit/outside/signer-key";
import { verifyArchiveFile } from "@/lib/audit/retention/archive-file";
import { AuditRetentionError } from "@/lib/audit/retention/plan";
import { runAuditRetention, type RetentionResult } from "@/lib/audit/retention/run";
import { loadAuditCheckpointConfig } from "@/lib/config/audit-checkpoints";
import { loadAuditRetentionConfig } from "@/lib/config/audit-retention";
import { loadCommonConfig } from "@/lib/config/common";
import { MASTER_KEY_FILE, resolveMasterKey } from "@/lib/identity/master-key";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { readRetiredCheckpointKeys } from "@/lib/keys/retired-checkpoint-keys";
import { parseFlags } from "../args";
import { CliError, type CliContext } from "../context";
import { withCliDatabase } from "../database";

/**
 * `bulkhead audit retention [--dry-run]` and `bulkhead audit verify-archive FILE`
 * (docs/audit.md, "Retention"). Removal connects as the owner role (DATABASE_URL): the runtime
 * roles cannot delete audit rows, and that stays so.
 */
const json = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

/** The checkpoint signer's key, which signs archives' manifests; null when it is not here (never created here). */
function localSignerKey(): SignerKey | null {
  return loadSignerKey(loadAuditCheckpointConfig(loadCommonConfig().dataDir).signerKeyFile, { create: false });
}

/** Every checkpoint key this installation knows: the signer's, the format-1 key (from the master key, when at hand), retired ones. */
function localCheckpointKeys(signer = localSignerKey()): CheckpointKey[] {
  const common = loadCommonConfig();
  const keys: CheckpointKey[] = signer ? [signer.publicKey] : [];
  if (common.masterKey || existsSync(path.join(common.dataDir, MASTER_KEY_FILE))) {
    keys.push(checkpointVerificationKey(deriveProcessKeys(resolveMasterKey(common.masterKey, common.dataDir).key).checkpointKey));
  }
  return [...keys, ...readRetiredCheckpointKeys(common.dataDir)];
}

export async function retentionCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(args, { "dry-run": { type: "boolean" } });
  const common = loadCommonConfig();
  const config = loadAuditRetentionConfig(common.dataDir);
  const sink = new DirectoryCheckpointSink(loadAuditCheckpointConfig(common.dataDir).sinkDir);
  const dryRun = values["dry-run"] === true;
  let result: RetentionResult;
  try {
    result = await withCliDatabase(
      ctx,
      (db) => {
        const signer = localSignerKey();
        return runAuditRetention({ db, sink, keys: localCheckpointKeys(signer), signerKey: signer?.seed ?? null, retentionDays: config.retentionDays, archiveDir: config.archiveDir, dryRun, performedBy: "cli" });
      },
      // A dry run reads only; removing needs the owner, which alone may delete audit rows.
      { role: dryRun || config.retentionDays === null ? "dashboard" : "owner" },
    );
  } catch (error) {
    if (error instanceof AuditRetentionError) throw new CliError(error.message, 1);
    throw error;
  }
  if (ctx.json) ctx.stdout(json({ dryRun, ...result }));
  else ctx.stdout(describe(result, config.retentionDays));
  return 0;
}

function describe(r: RetentionResult, days: number | null): string {
  if (r.state === "off") return "Audit retention is off (set BULKHEAD_AUDIT_RETENTION_DAYS to a number of days to turn it on).";
  if (r.state === "nothing") return `Nothing removed (retention ${days} day(s), cutoff ${r.cutoff.toISOString()}): ${r.reason}.`;
  const p = r.plan;
  const what = `events ${p.fromSeq}-${p.throughSeq} (${p.events}), through checkpoint ${p.checkpoint.chain.number}, all before ${p.cutoff.toISOString()}`;
  if (r.state === "planned") return `Dry run: would archive and remove ${what}. Nothing was written or removed.`;
  return `Archived ${what} to ${r.archive.file} (sha256 ${r.archive.sha256}${r.archive.reused ? ", written by an earlier run" : ""}), verified it, and removed ${r.removed} event(s); checkpoint ${p.checkpoint.chain.number} is kept as the chain's anchor.`;
}

const KEY = /^ack_[0-9a-f]{16}:[A-Za-z0-9_-]{43}$/;

/** Checkpoint keys from --keys (the JSON of /.well-known/bulkhead-audit-keys.json). */
async function keysFromFile(file: string): Promise<CheckpointKey[]> {
  let doc: { keys?: Array<{ keyId?: unknown; publicKey?: unknown; use?: unknown }> };
  if (!existsSync(file)) throw new CliError(`--keys ${file} does not exist (save /.well-known/bulkhead-audit-keys.json to it)`, 2);
  try {
    doc = JSON.parse(await readFile(file, "utf8")) as typeof doc;
  } catch {
    throw new CliError(`--keys ${file} is not the JSON of /.well-known/bulkhead-audit-keys.json`, 2);
  }
  return (doc.keys ?? [])
    .filter((k) => typeof k.use === "string" && k.use.startsWith("checkpoint") && typeof k.keyId === "string" && typeof k.publicKey === "string")
    .map((k) => ({ keyId: k.keyId as string, publicKey: k.publicKey as string }));
}

/**
 * `bulkhead audit verify-archive FILE [--manifest FILE] [--key KEY_ID:PUBLIC_KEY]... [--keys KEYS.json] [--require-signed-manifest]`:
 * offline. Trusts --key, --keys and this installation's checkpoint keys when they are at hand.
 * An archive whose manifest is unsigned (version 1) verifies as far as signatures reach, and the
 * output names what only that manifest vouches for; --require-signed-manifest refuses it.
 */
export async function verifyArchiveCommand(args: string[], ctx: CliContext): Promise<number> {
  const usage = "usage: bulkhead audit verify-archive FILE [--manifest FILE] [--key KEY_ID:PUBLIC_KEY]... [--keys KEYS.json] [--require-signed-manifest]";
  const { values, positionals } = parseFlags(
    args,
    { manifest: { type: "string" }, key: { type: "string", multiple: true }, keys: { type: "string" }, "require-signed-manifest": { type: "boolean" } },
    1,
  );
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new CliError(usage, 2);
  if (!existsSync(file)) throw new CliError(`${file} does not exist`, 2);
  const keys: CheckpointKey[] = (values.key ?? []).map((k) => {
    if (!KEY.test(k)) throw new CliError("--key must be KEY_ID:PUBLIC_KEY as `bulkhead audit key` prints it", 2);
    const [keyId, publicKey] = k.split(":") as [string, string];
    return { keyId, publicKey };
  });
  if (values.keys) keys.push(...(await keysFromFile(values.keys)));
  try {
    keys.push(...localCheckpointKeys());
  } catch {
    // not on the installation's machine: --key and --keys only
  }
  if (keys.length === 0) throw new CliError(`no checkpoint key to check signatures with: pass --key or --keys\n${usage}`, 2);
  const result = await verifyArchiveFile(file, keys, values.manifest);
  if (result.ok && !result.manifestSigned && values["require-signed-manifest"] === true) {
    result.ok = false;
    result.problems.push("the manifest is not signed (an archive of version 1), and --require-signed-manifest was given");
  }
  const unsigned = result.manifestSigned ? [] : result.unsignedParts;
  if (ctx.json) {
    const { ok, problems, header, events, checkpoints, manifestSigned } = result;
    ctx.stdout(json({ ok, problems, header, events, checkpoints, sha256: result.manifest?.sha256 ?? null, manifestSigned, manifestKeyId: manifestSigned ? result.manifest!.keyId : null, unsignedParts: unsigned }));
  } else if (result.ok) {
    const h = result.header!;
    const chain = `${file} holds events ${h.fromSeq}-${h.throughSeq} (${result.events}), chained from ${h.anchorPrevHash.slice(0, 16)}… to checkpoint ${h.checkpoint.number} (hash ${h.checkpoint.hash}); ${result.checkpoints} checkpoint signature(s) verify`;
    if (result.manifestSigned) {
      ctx.stdout(`Archive OK: ${chain}, and the manifest is signed by ${result.manifest!.keyId}: its sha256 vouches for every byte, with the segment's range and each event's id and recordedAt.`);
    } else {
      ctx.stdout(`Archive OK as far as signatures reach: ${chain}. Its manifest is NOT signed (an archive of version 1, written before manifests were); its sha256 matches, but only that unsigned manifest vouches for:`);
      for (const p of unsigned) ctx.stdout(`  ${p}`);
      ctx.stdout("Compare its sha256 with the audit.retention event that removed the segment, or pass --require-signed-manifest to refuse such archives.");
    }
  } else {
    ctx.stdout(`Archive NOT VERIFIED: ${file}:`);
    for (const p of result.problems) ctx.stdout(`  ${p}`);
  }
  return result.ok ? 0 : 1;
}
