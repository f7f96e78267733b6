import { z } from "zod";
import { parseEnv } from "./env";

const identitySchema = z.object({
  /** `iss` of task tokens; verifiers require it exactly. */
  BULKHEAD_TOKEN_ISSUER: z.string().min(1).max(200).default("bulkhead"),
  /** `aud` of task tokens: the proxy. */
  BULKHEAD_TOKEN_AUDIENCE: z.string().min(1).max(200).default("bulkhead-proxy"),
});

export interface IdentityConfig {
  issuer: string;
  audience: string;
}

export function loadIdentityConfig(source: Record<string, string | undefined> = process.env): IdentityConfig {
  const env = parseEnv(identitySchema, source);
  return { issuer: env.BULKHEAD_TOKEN_ISSUER, audience: env.BULKHEAD_TOKEN_AUDIENCE };
}
