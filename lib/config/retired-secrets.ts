import { z } from "zod";
import { parseEnv } from "./env";

/**
 * How long the secrets a credential no longer injects (rotated away, or the credential deleted)
 * stay redacted, and how many per service (docs/vault-and-api.md, "Retired secrets"). Read by the
 * dashboard and the CLI, which prune them when they write one, and by the worker, which redacts
 * only those inside both bounds. Part of the dashboard's and the worker's configuration (checked
 * at their start), so one value serves both.
 */
export const retiredSecretsEnv = {
  /** Days a retired secret stays redacted: an upstream's logs keep it, and it may not be revoked there yet. */
  BULKHEAD_RETIRED_SECRET_DAYS: z.coerce
    .number({ error: "must be a whole number of days" })
    .int("must be a whole number of days")
    .min(1, "must be at least 1 day")
    .max(3650, "must be at most 3650 days (ten years)")
    .default(90),
  /** The newest this many retired secrets per service are kept: each one adds to the patterns every answer of that service is scanned for. */
  BULKHEAD_RETIRED_SECRETS_PER_SERVICE: z.coerce
    .number({ error: "must be a whole number" })
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(200, "must be at most 200")
    .default(20),
};

export interface RetiredSecretsConfig {
  retentionDays: number;
  perService: number;
}

export const RETIRED_SECRETS_DEFAULTS: RetiredSecretsConfig = { retentionDays: 90, perService: 20 };

export function retiredSecretsConfigOf(env: { BULKHEAD_RETIRED_SECRET_DAYS: number; BULKHEAD_RETIRED_SECRETS_PER_SERVICE: number }): RetiredSecretsConfig {
  return { retentionDays: env.BULKHEAD_RETIRED_SECRET_DAYS, perService: env.BULKHEAD_RETIRED_SECRETS_PER_SERVICE };
}

export function loadRetiredSecretsConfig(source: Record<string, string | undefined> = process.env): RetiredSecretsConfig {
  return retiredSecretsConfigOf(parseEnv(z.object(retiredSecretsEnv), source));
}
