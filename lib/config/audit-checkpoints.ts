import path from "node:path";
import { z } from "zod";
import { optionalString, parseEnv } from "./env";

/**
 * Where signed checkpoints are kept outside PostgreSQL and who signs them (docs/audit.md,
 * "Checkpoints outside the database"). Read by the launcher (which runs the signer) and the CLI.
 */
const schema = z.object({
  /** Append-only folder for published checkpoints; default <data dir>/audit-checkpoints. */
  BULKHEAD_AUDIT_CHECKPOINT_DIR: optionalString,
  /** The signer's Ed25519 seed (created on first start, owner-only); default <data dir>/audit-signer.key. */
  BULKHEAD_AUDIT_SIGNER_KEY_FILE: optionalString,
  /** How often the signer signs the chain head when it moved. */
  BULKHEAD_AUDIT_CHECKPOINT_INTERVAL_MS: z.coerce.number({ error: "must be a number of milliseconds" }).int("must be a whole number of milliseconds").min(100, "must be at least 100").max(3_600_000, "must be at most 3600000").default(10_000),
});

export interface AuditCheckpointConfig {
  sinkDir: string;
  signerKeyFile: string;
  intervalMs: number;
}

export function loadAuditCheckpointConfig(dataDir: string, source: Record<string, string | undefined> = process.env): AuditCheckpointConfig {
  const env = parseEnv(schema, source);
  return {
    sinkDir: path.resolve(env.BULKHEAD_AUDIT_CHECKPOINT_DIR ?? path.join(dataDir, "audit-checkpoints")),
    signerKeyFile: path.resolve(env.BULKHEAD_AUDIT_SIGNER_KEY_FILE ?? path.join(dataDir, "audit-signer.key")),
    intervalMs: env.BULKHEAD_AUDIT_CHECKPOINT_INTERVAL_MS,
  };
}
