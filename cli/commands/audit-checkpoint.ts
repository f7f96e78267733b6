import { readFile } from "node:fs/promises";
import { z } from "zod";
import { checkpointVerificationKey, type CheckpointKey, type SignedCheckpoint } from "@/lib/audit/checkpoints";
import { DirectoryCheckpointSink } from "@/lib/audit/outside/directory";
import { loadSignerKey } from "@/lib/audit/outside/signer-key";
import { CheckpointSignerError, signCheckpointRound } from "@/lib/audit/outside/signer";
import { checkpointDocument } from "@/lib/audit/outside/sink";
import { verifyWithOutside, type FullVerification } from "@/lib/audit/outside/verify-outside";
import { loadAuditCheckpointConfig } from "@/lib/config/audit-checkpoints";
import { loadCommonConfig } from "@/lib/config/common";
import { readRetiredCheckpointKeys } from "@/lib/keys/retired-checkpoint-keys";
import { parseFlags } from "../args";
import { CliError, type CliContext } from "../context";
import { withCliDatabase, withCliKeys } from "../database";

/**
 * `bulkhead audit checkpoint | verify | key`: the checkpoint signer's key lives in the data folder
 * (BULKHEAD_AUDIT_SIGNER_KEY_FILE), the published copies in BULKHEAD_AUDIT_CHECKPOINT_DIR.
 */
function outside() {
  const common = loadCommonConfig();
  const config = loadAuditCheckpointConfig(common.dataDir);
  return { common, config, sink: new DirectoryCheckpointSink(config.sinkDir) };
}

const json = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

/** Signs the head when it moved (unless --no-sign), then prints the newest published checkpoint. */
export async function checkpointCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(args, { "no-sign": { type: "boolean" } });
  const { config, sink } = outside();
  let refused: string | null = null;
  let signed = false;
  if (!values["no-sign"]) {
    try {
      signed = await withCliDatabase(ctx, async (db) => {
        // A new signer key only where no checkpoint was signed yet: elsewhere (another data folder)
        // it would be a key nobody trusts, left behind by a round that refuses anyway.
        if (!loadSignerKey(config.signerKeyFile, { create: false })) {
          const [row] = await db.$queryRawUnsafe<Array<{ n: string | null }>>("SELECT max(number)::text AS n FROM audit_checkpoints");
          if (row?.n) {
            throw new CheckpointSignerError(
              `refusing to sign: there is no signer key in ${config.signerKeyFile}, and the database holds checkpoints up to number ${row.n}; run this where Bulkhead's data folder is (BULKHEAD_DATA_DIR), or point BULKHEAD_AUDIT_SIGNER_KEY_FILE at its key`,
            );
          }
        }
        const key = loadSignerKey(config.signerKeyFile, { create: true })!;
        if (key.created) ctx.stderr(`Created the audit checkpoint signer key in ${config.signerKeyFile} (owner-only).`);
        return (await signCheckpointRound({ db, key, sink })).signed !== null;
      });
    } catch (error) {
      if (!(error instanceof CheckpointSignerError)) throw error;
      refused = error.message;
    }
  }
  const latest = await sink.latest();
  if (latest && !("checkpoint" in latest)) throw new CliError(`The newest published checkpoint (${latest.location}) is unreadable: ${latest.problem}. Run \`bulkhead audit verify\`.`, 1);
  if (refused) ctx.stderr(refused);
  if (ctx.json) {
    ctx.stdout(JSON.stringify(latest && { ...checkpointDocument(latest.checkpoint), location: latest.location }));
  } else if (latest) {
    const cp = latest.checkpoint;
    ctx.stdout(`${signed ? "Signed" : "Latest"} checkpoint ${cp.chain.number}: seq ${cp.seq}, hash ${cp.hash}, signed ${cp.chain.signedAt.toISOString()} by ${cp.keyId}; published at ${latest.location}.`);
  } else if (values["no-sign"] || refused) {
    // Nothing in the folder says nothing about the chain (it may be another data folder's).
    ctx.stdout(`No checkpoint is published in ${config.sinkDir}.`);
  } else {
    ctx.stdout("No checkpoint yet: the audit chain is empty.");
  }
  return refused ? 1 : 0;
}

const KEY_FLAG = /^ack_[0-9a-f]{16}:[A-Za-z0-9_-]{43}$/;
const trustedCheckpoint = z.object({
  seq: z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).transform((v) => BigInt(v)),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  keyId: z.string(),
  signature: z.string(),
  number: z.string().regex(/^[1-9]\d*$/).optional(),
  signedAt: z.string().optional(),
  prevSignature: z.string().nullable().optional(),
});

/**
 * Checkpoints saved elsewhere: one published checkpoint file (`checkpoint-*.json`), a JSON array,
 * or one JSON object per line, as `bulkhead audit checkpoint --json` prints them (format 1 or 2).
 * A file that is missing or holds anything else is refused naming the flag, the file and the entry.
 */
async function readTrusted(file: string): Promise<SignedCheckpoint[]> {
  const expected = "a published checkpoint file, a JSON array of checkpoints, or one per line as `bulkhead audit checkpoint --json` prints them";
  let text: string;
  try {
    text = (await readFile(file, "utf8")).trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(code === "ENOENT" ? `--trusted ${file} does not exist` : `--trusted ${file} cannot be read (${code ?? String(error)})`, 2);
  }
  let items: Array<{ where: string; value: unknown }>;
  try {
    // The whole file as one JSON value: a published checkpoint (pretty-printed) or an array of them.
    const whole = JSON.parse(text) as unknown;
    items = Array.isArray(whole) ? whole.map((value, i) => ({ where: `entry ${i + 1}`, value })) : [{ where: "its checkpoint", value: whole }];
  } catch {
    items = [];
    for (const [i, line] of text.split("\n").entries()) {
      if (line.trim() === "") continue;
      try {
        items.push({ where: `line ${i + 1}`, value: JSON.parse(line) as unknown });
      } catch {
        throw new CliError(`--trusted ${file}: line ${i + 1} is not JSON; the file must be ${expected}`, 2);
      }
    }
  }
  if (items.length === 0) throw new CliError(`--trusted ${file} holds no checkpoint; it must be ${expected}`, 2);
  return items.map(({ where, value }) => {
    const parsed = trustedCheckpoint.safeParse(value);
    if (!parsed.success) {
      const fields = [...new Set(parsed.error.issues.map((x) => x.path.join(".") || "value"))].join(", ");
      throw new CliError(`--trusted ${file}: ${where} is not a checkpoint (${fields} missing or malformed); the file must be ${expected}`, 2);
    }
    const c = parsed.data;
    const chain = c.number && c.signedAt ? { number: BigInt(c.number), signedAt: new Date(c.signedAt), prevSignature: c.prevSignature ?? null } : undefined;
    return { seq: c.seq, hash: c.hash, keyId: c.keyId, signature: c.signature, ...(chain ? { chain } : {}) };
  });
}

/** The keys `verify` trusts: the signer's, the key format-1 checkpoints were signed with, retired ones, --key. */
function trustedKeys(legacy: Buffer, extra: CheckpointKey[]): CheckpointKey[] {
  const { common, config } = outside();
  const signer = loadSignerKey(config.signerKeyFile, { create: false });
  return [...(signer ? [signer.publicKey] : []), checkpointVerificationKey(legacy), ...readRetiredCheckpointKeys(common.dataDir), ...extra];
}

export async function verifyCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(args, { from: { type: "string" }, key: { type: "string", multiple: true }, trusted: { type: "string" }, "no-outside": { type: "boolean" } });
  if (values.from !== undefined && !/^[1-9]\d*$/.test(values.from)) throw new CliError("--from must be a positive integer", 2);
  const extraKeys: CheckpointKey[] = (values.key ?? []).map((k) => {
    if (!KEY_FLAG.test(k)) throw new CliError("--key must be KEY_ID:PUBLIC_KEY as printed by `bulkhead audit key`", 2);
    const [keyId, publicKey] = k.split(":") as [string, string];
    return { keyId, publicKey };
  });
  const extraCheckpoints = values.trusted ? await readTrusted(values.trusted) : [];
  const { sink } = outside();
  const result = await withCliKeys(ctx, (db, keys) =>
    verifyWithOutside(db, {
      keys: trustedKeys(keys.checkpointKey, extraKeys),
      sink: values["no-outside"] ? null : sink,
      fromSeq: values.from === undefined ? undefined : BigInt(values.from),
      extraCheckpoints,
    }),
  );
  if (ctx.json) ctx.stdout(json({ ...result.chain, ok: result.ok, chain: result.chain, outside: result.outside }));
  else for (const line of describe(result)) ctx.stdout(line);
  return result.ok ? 0 : 1;
}

function describe(result: FullVerification): string[] {
  const c = result.chain;
  const lines = [
    c.ok
      ? `Audit chain OK: ${c.events} events verified, last seq ${c.lastSeq} (hash ${c.lastHash}); ${c.checkpoints} signed checkpoint(s) match.`
      : `Audit chain BROKEN at seq ${c.firstBadSeq}: ${c.problem}. ${c.detail}`,
  ];
  if (!c.ok) {
    lines.push(`Verification stops at the first break: events after it were not checked and may be broken too. \`bulkhead audit verify --from <seq>\` checks from a later event on, trusting the stored hash of the one before it.`);
  }
  if (c.ok && c.retention) {
    lines.push(`Events before seq ${c.retention.firstKeptSeq} were archived and removed by retention: the chain starts there, anchored on checkpoint ${c.retention.checkpointNumber}; ${c.retention.archivedCheckpoints} checkpoint(s) cover archived events.`);
  }
  const o = result.outside;
  if (!o) return lines;
  const latest = o.latest ? `, the newest is ${o.latest.number} at seq ${o.latest.seq} (signed ${o.latest.signedAt.toISOString()})` : "";
  const archived = o.archived > 0 ? ` (${o.archived} of them over archived events)` : "";
  if (o.ok) lines.push(`Outside copies OK (${o.sink}): ${o.trusted} published checkpoint(s) verified and match the database${archived}${latest}.`);
  else {
    lines.push(`Outside copies DISAGREE (${o.sink}): ${o.trusted} published checkpoint(s) verified${latest}; found:`);
    for (const f of o.findings) lines.push(`  ${f.kind}: ${f.detail}`);
  }
  return lines;
}

/** The signer's public key (what /.well-known/bulkhead-audit-keys.json publishes). */
export async function keyCommand(args: string[], ctx: CliContext): Promise<number> {
  parseFlags(args, {});
  const { config } = outside();
  const key = loadSignerKey(config.signerKeyFile, { create: true })!;
  if (key.created) ctx.stderr(`Created the audit checkpoint signer key in ${config.signerKeyFile} (owner-only).`);
  ctx.stdout(ctx.json ? JSON.stringify(key.publicKey) : `${key.publicKey.keyId}:${key.publicKey.publicKey}`);
  return 0;
}
