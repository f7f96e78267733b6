import { z } from "zod";
import { parseEnv } from "./env";

/**
 * What the dashboard needs to show the audit chain's status: the public keys that sign
 * checkpoints (`KEY_ID:PUBLIC_KEY`, as `bulkhead audit key` prints them, comma-separated: the
 * launcher's checkpoint signer first, then the key older checkpoints were signed with), which the
 * launcher passes to the dashboard so that it can check checkpoint signatures without holding a
 * signing key, and publishes at /.well-known/bulkhead-audit-keys.json. Unset (a dashboard started
 * by hand without it): the page still verifies the hash chain and says that signatures were not
 * checked.
 */
const KEY = /^ack_[0-9a-f]{16}:[A-Za-z0-9_-]{43}$/;
const auditSchema = z.object({
  BULKHEAD_CHECKPOINT_PUBLIC_KEY: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === "" ? [] : v.split(",").map((k) => k.trim())))
    .refine((keys) => keys.every((k) => KEY.test(k)), "must be KEY_ID:PUBLIC_KEY as `bulkhead audit key` prints it (several separated by commas)"),
});

export interface AuditViewConfig {
  /** The first is the current signer's; null when none was given. */
  checkpointPublicKey: { keyId: string; publicKey: string } | null;
  checkpointPublicKeys: Array<{ keyId: string; publicKey: string }>;
}

export function loadAuditViewConfig(source: Record<string, string | undefined> = process.env): AuditViewConfig {
  const env = parseEnv(auditSchema, source);
  const keys = env.BULKHEAD_CHECKPOINT_PUBLIC_KEY.map((k) => {
    const [keyId, publicKey] = k.split(":") as [string, string];
    return { keyId, publicKey };
  });
  return { checkpointPublicKey: keys[0] ?? null, checkpointPublicKeys: keys };
}
