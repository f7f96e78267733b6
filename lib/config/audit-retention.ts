import path from "node:path";
import { z } from "zod";
import { optionalString, parseEnv } from "./env";

/**
 * Audit retention (docs/audit.md, "Retention"): off unless BULKHEAD_AUDIT_RETENTION_DAYS is a
 * positive number of days. Read by `bulkhead audit retention` and the launcher.
 */
const schema = z.object({
  /** Events older than this many days may be archived and removed, as whole checkpointed segments. 0 or unset: off. */
  BULKHEAD_AUDIT_RETENTION_DAYS: z.coerce
    .number({ error: "must be a whole number of days (0 or unset: off)" })
    .int("must be a whole number of days (0 or unset: off)")
    .min(0, "must be 0 (off) or more")
    .max(36_500, "must be at most 36500 days")
    .default(0),
  /** Where archives are written before anything is removed; default <data dir>/audit-archive. */
  BULKHEAD_AUDIT_ARCHIVE_DIR: optionalString,
});

export interface AuditRetentionConfig {
  /** null: retention is off. */
  retentionDays: number | null;
  archiveDir: string;
}

export function loadAuditRetentionConfig(dataDir: string, source: Record<string, string | undefined> = process.env): AuditRetentionConfig {
  const env = parseEnv(schema, source);
  return {
    retentionDays: env.BULKHEAD_AUDIT_RETENTION_DAYS === 0 ? null : env.BULKHEAD_AUDIT_RETENTION_DAYS,
    archiveDir: path.resolve(env.BULKHEAD_AUDIT_ARCHIVE_DIR ?? path.join(dataDir, "audit-archive")),
  };
}
