import { z } from "zod";
import { parseEnv } from "./env";

/**
 * What the dashboard needs to show the audit chain's status: the public half of the checkpoint
 * key (`KEY_ID:PUBLIC_KEY`, as `bulkhead audit key` prints it), which the launcher passes to the
 * dashboard so that it can check checkpoint signatures without holding the signing key. Unset
 * (a dashboard started by hand without it): the page still verifies the hash chain and says that
 * signatures were not checked.
 */
const auditSchema = z.object({
  BULKHEAD_CHECKPOINT_PUBLIC_KEY: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()))
    .refine((v) => v === undefined || /^ack_[0-9a-f]{16}:[A-Za-z0-9_-]{43}$/.test(v), "must be KEY_ID:PUBLIC_KEY as `bulkhead audit key` prints it"),
});

export interface AuditViewConfig {
  checkpointPublicKey: { keyId: string; publicKey: string } | null;
}

export function loadAuditViewConfig(source: Record<string, string | undefined> = process.env): AuditViewConfig {
  const env = parseEnv(auditSchema, source);
  if (!env.BULKHEAD_CHECKPOINT_PUBLIC_KEY) return { checkpointPublicKey: null };
  const [keyId, publicKey] = env.BULKHEAD_CHECKPOINT_PUBLIC_KEY.split(":") as [string, string];
  return { checkpointPublicKey: { keyId, publicKey } };
}
