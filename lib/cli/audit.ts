import { readFile } from "node:fs/promises";
import { z } from "zod";
import { checkpointVerificationKey, writeCheckpoint, type CheckpointKey, type SignedCheckpoint } from "@/lib/audit/checkpoints";
import { verifyAuditChain } from "@/lib/audit/verify";
import { loadCommonConfig } from "@/lib/config/common";
import { readRetiredCheckpointKeys } from "@/lib/keys/retired-checkpoint-keys";
import { parseFlags } from "./args";
import { CliError, type CommandHandler, type CliContext } from "./context";
import { withCliKeys } from "./database";
import { exportCommand } from "./audit-export";

const USAGE = `usage:
  bulkhead audit verify [--from SEQ] [--key KEY_ID:PUBLIC_KEY]... [--trusted FILE]
  bulkhead audit export [--format csv|jsonl|ocsf] [--output FILE] [--from TIME] [--to TIME] [--agent ID|NAME]
                        [--task ID] [--user ID|EMAIL] [--type T]... [--outcome O]... [--effect E]...
                        [--service S]... [--environment E]... [--q TEXT]
  bulkhead audit checkpoint
  bulkhead audit key`;

const keyFlag = z.string().regex(/^ack_[0-9a-f]{16}:[A-Za-z0-9_-]{43}$/, "--key must be KEY_ID:PUBLIC_KEY as printed by `bulkhead audit key`");
const trustedCheckpoint = z.object({
  seq: z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).transform((v) => BigInt(v)),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  keyId: z.string(),
  signature: z.string(),
});

/** Checkpoints saved outside the database: a JSON array, or one JSON object per line. */
async function readTrusted(file: string): Promise<SignedCheckpoint[]> {
  const text = (await readFile(file, "utf8")).trim();
  const items: unknown[] = text.startsWith("[") ? (JSON.parse(text) as unknown[]) : text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as unknown);
  return items.map((i) => trustedCheckpoint.parse(i));
}

async function verify(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(args, { from: { type: "string" }, key: { type: "string", multiple: true }, trusted: { type: "string" } });
  if (values.from !== undefined && !/^[1-9]\d*$/.test(values.from)) throw new CliError("--from must be a positive integer", 2);
  const extraKeys: CheckpointKey[] = (values.key ?? []).map((k) => {
    const [keyId, publicKey] = keyFlag.parse(k).split(":") as [string, string];
    return { keyId, publicKey };
  });
  const trustedCheckpoints = values.trusted ? await readTrusted(values.trusted) : [];
  // Keys of master keys rotated away still verify the checkpoints they signed.
  const retiredKeys = readRetiredCheckpointKeys(loadCommonConfig().dataDir);
  const result = await withCliKeys(ctx, (db, keys) =>
    verifyAuditChain(db, {
      fromSeq: values.from === undefined ? undefined : BigInt(values.from),
      checkpointKeys: [checkpointVerificationKey(keys.checkpointKey), ...retiredKeys, ...extraKeys],
      trustedCheckpoints,
    }),
  );
  if (ctx.json) {
    ctx.stdout(JSON.stringify(result, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
  } else if (result.ok) {
    ctx.stdout(`Audit chain OK: ${result.events} events verified, last seq ${result.lastSeq} (hash ${result.lastHash}); ${result.checkpoints} signed checkpoint(s) match.`);
  } else {
    ctx.stdout(`Audit chain BROKEN at seq ${result.firstBadSeq}: ${result.problem}. ${result.detail}`);
  }
  return result.ok ? 0 : 1;
}

async function checkpoint(args: string[], ctx: CliContext): Promise<number> {
  parseFlags(args, {});
  const cp = await withCliKeys(ctx, (db, keys) => writeCheckpoint(db, keys.checkpointKey));
  if (ctx.json) {
    ctx.stdout(JSON.stringify(cp && { seq: cp.seq.toString(), hash: cp.hash, keyId: cp.keyId, signature: cp.signature }));
  } else if (cp) {
    ctx.stdout(`Checkpoint signed at seq ${cp.seq} (hash ${cp.hash}, key ${cp.keyId}).`);
    ctx.stdout("Keep a copy outside the database (`--json` prints it) to detect truncation by the table owner.");
  } else {
    ctx.stdout("Nothing new to sign: the chain is empty or the newest checkpoint is already at the head.");
  }
  return 0;
}

async function key(args: string[], ctx: CliContext): Promise<number> {
  parseFlags(args, {});
  const k = await withCliKeys(ctx, async (_db, keys) => checkpointVerificationKey(keys.checkpointKey));
  ctx.stdout(ctx.json ? JSON.stringify(k) : `${k.keyId}:${k.publicKey}`);
  return 0;
}

export const auditCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  if (sub === "verify") return verify(rest, ctx);
  if (sub === "export") return exportCommand(rest, ctx);
  if (sub === "checkpoint") return checkpoint(rest, ctx);
  if (sub === "key") return key(rest, ctx);
  throw new CliError(USAGE, 2);
};
