/**
 * The checkpoint signer: signs the chain head as a format-2 checkpoint linked to the previous one,
 * publishes it outside PostgreSQL (the commit point), then stores it in audit_checkpoints.
 *
 * It runs in the launcher (`bulkhead start`, cli/commands/start.ts) and in `bulkhead audit checkpoint`,
 * never in the dashboard or the worker: those hold no signer key. Its idea of "the previous
 * checkpoint" is the newest one in the sink, not the database's, so a checkpoint deleted from the
 * database cannot make it sign around the gap; and it refuses to sign a head when the chain no
 * longer has the hash it last signed at that seq (the chain was recomputed or cut: signing would
 * vouch for the rewrite), saying so every round until someone looks (`bulkhead audit verify`).
 */
import { GENESIS_HASH } from "../chain";
import { checkpointSignatureValid, signChainedCheckpoint } from "../checkpoints";
import { auditSql, type AuditDb, type AuditSql } from "../sql";
import type { SignerKey } from "./signer-key";
import type { CheckpointSink, PublishedCheckpoint } from "./sink";

export class CheckpointSignerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointSignerError";
  }
}

type Chained = PublishedCheckpoint["checkpoint"];

export interface SignerRoundResult {
  /** The checkpoint signed in this round, or null when the head had not moved. */
  signed: Chained | null;
  /** The newest published checkpoint after the round. */
  latest: Chained | null;
}

export interface SignerOptions {
  db: AuditDb;
  key: SignerKey;
  sink: CheckpointSink;
  now?: () => Date;
}

/** One round: sign and publish the head if it moved past the newest published checkpoint. */
export async function signCheckpointRound(options: SignerOptions): Promise<SignerRoundResult> {
  const sql = auditSql(options.db);
  const last = await latestPublished(options);
  if (last) await storeCheckpoint(sql, last); // a crash between publishing and storing left it out
  else await assertNothingPublishedElsewhere(sql, options.sink);

  const [head] = await sql.query<{ seq: string; hash: string; row_hash: string | null }>(
    `SELECT h.seq::text AS seq, h.hash, (SELECT a.hash FROM audit_events a WHERE a.seq = h.seq) AS row_hash
       FROM audit_chain_head h WHERE h.id = 1`,
  );
  if (!head) throw new CheckpointSignerError("audit_chain_head has no row (is the database migrated?)");
  const seq = BigInt(head.seq);
  if (seq === 0n && head.hash === GENESIS_HASH) return { signed: null, latest: last };
  if (head.row_hash !== head.hash) {
    throw new CheckpointSignerError(`refusing to sign: the chain head (seq ${seq}) does not match the event stored at that seq; run \`bulkhead audit verify\``);
  }
  if (last) {
    const [row] = await sql.query<{ hash: string | null }>("SELECT hash FROM audit_events WHERE seq = $1::bigint", [last.seq.toString()]);
    if (row?.hash !== last.hash) {
      const what = row ? "has another hash (the chain was rewritten)" : "is gone (the tail was dropped)";
      throw new CheckpointSignerError(`refusing to sign: event ${last.seq}, signed by checkpoint ${last.chain.number}, ${what}; run \`bulkhead audit verify\``);
    }
    if (seq <= last.seq) return { signed: null, latest: last };
  }
  const signedAt = new Date(Math.floor((options.now?.() ?? new Date()).getTime()));
  const checkpoint = signChainedCheckpoint(options.key.seed, seq, head.hash, {
    number: last ? last.chain.number + 1n : 1n,
    signedAt,
    prevSignature: last?.signature ?? null,
  }) as Chained;
  await options.sink.publish(checkpoint);
  await storeCheckpoint(sql, checkpoint);
  return { signed: checkpoint, latest: checkpoint };
}

async function latestPublished(options: SignerOptions): Promise<Chained | null> {
  const latest = await options.sink.latest();
  if (latest === null) return null;
  if (!("checkpoint" in latest)) {
    throw new CheckpointSignerError(`refusing to sign: the newest published checkpoint (${latest.location}) is unreadable: ${latest.problem}`);
  }
  if (!checkpointSignatureValid(latest.checkpoint, [options.key.publicKey])) {
    // Usually the key file was lost and a new one created: say which key the chain is under.
    throw new CheckpointSignerError(
      `refusing to sign: the newest published checkpoint (${latest.location}) is not signed by this signer's key ${options.key.publicKey.keyId} but names ${latest.checkpoint.keyId}; ` +
        `restore the signer key file that holds ${latest.checkpoint.keyId} (BULKHEAD_AUDIT_SIGNER_KEY_FILE, default <data dir>/audit-signer.key) and restart. ` +
        `Until then no checkpoint is signed; enforcement and the audit log go on`,
    );
  }
  return latest.checkpoint;
}

/** An empty sink while the database holds chained checkpoints: the outside copies are missing. */
async function assertNothingPublishedElsewhere(sql: AuditSql, sink: CheckpointSink): Promise<void> {
  const [row] = await sql.query<{ n: string | null }>("SELECT max(number)::text AS n FROM audit_checkpoints");
  if (row?.n) {
    throw new CheckpointSignerError(
      `refusing to sign: the database holds chained checkpoints up to number ${row.n} but the ${sink.description} has none; ` +
        "restore the published copies or point BULKHEAD_AUDIT_CHECKPOINT_DIR at them",
    );
  }
}

/** Inserts a chained checkpoint unless its number is stored already (an append-only table: no upsert). */
async function storeCheckpoint(sql: AuditSql, cp: Chained): Promise<void> {
  await sql.query(
    `INSERT INTO audit_checkpoints (seq, hash, key_id, signature, number, prev_signature, signed_at)
     SELECT $1::bigint, $2, $3, $4, $5::bigint, $6, $7::timestamptz
      WHERE NOT EXISTS (SELECT 1 FROM audit_checkpoints WHERE number = $5::bigint)
     ON CONFLICT (number) DO NOTHING`,
    [cp.seq.toString(), cp.hash, cp.keyId, cp.signature, cp.chain.number.toString(), cp.chain.prevSignature, cp.chain.signedAt.toISOString()],
  );
}

export interface CheckpointSignerLoop {
  runOnce(): Promise<SignerRoundResult>;
  stop(): Promise<void>;
}

/** Runs a round every `intervalMs`; a failed round is reported through `onError` and retried. */
export function startCheckpointSigner(options: SignerOptions & { intervalMs: number; onError: (error: Error) => void }): CheckpointSignerLoop {
  let running: Promise<SignerRoundResult> | null = null;
  const runOnce = () => {
    running ??= signCheckpointRound(options).finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => {
    runOnce().catch((error: unknown) => options.onError(error instanceof Error ? error : new Error(String(error))));
  }, options.intervalMs);
  timer.unref();
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
