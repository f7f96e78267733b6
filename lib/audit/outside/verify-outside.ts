/**
 * `bulkhead audit verify` with the outside copies: the hash chain verified with the published
 * checkpoints as trusted ones (so a cut or rewritten chain fails there too), and the database's
 * checkpoints compared with the published ones (lib/audit/outside/compare.ts).
 */
import type { CheckpointKey, SignedCheckpoint } from "../checkpoints";
import { auditSql, type AuditDb } from "../sql";
import { verifyAuditChain, type AuditChainVerification } from "../verify";
import { compareWithOutside, trustedPublished, type OutsideComparison } from "./compare";
import type { CheckpointSink } from "./sink";

export interface FullVerification {
  ok: boolean;
  chain: AuditChainVerification;
  outside: (OutsideComparison & { sink: string }) | null;
}

export interface VerifyWithOutsideOptions {
  keys: readonly CheckpointKey[];
  /** null: no sink configured (or asked for none): the chain and the database's checkpoints only. */
  sink: CheckpointSink | null;
  fromSeq?: bigint;
  /** Further checkpoints kept elsewhere (`--trusted FILE`). */
  extraCheckpoints?: readonly SignedCheckpoint[];
}

export async function verifyWithOutside(db: AuditDb, options: VerifyWithOutsideOptions): Promise<FullVerification> {
  const [stored] = await auditSql(db).query<{ n: string | null }>("SELECT max(number)::text AS n FROM audit_checkpoints");
  const published = options.sink ? await options.sink.readAll() : null;
  const trusted = published ? trustedPublished(published, options.keys) : [];
  const chain = await verifyAuditChain(db, {
    fromSeq: options.fromSeq,
    checkpointKeys: options.keys,
    trustedCheckpoints: [...trusted, ...(options.extraCheckpoints ?? [])],
  });
  const outside = published && options.sink ? { ...(await compareWithOutside(db, published, options.keys, BigInt(stored?.n ?? 0))), sink: options.sink.description } : null;
  return { ok: chain.ok && (outside?.ok ?? true), chain, outside };
}
