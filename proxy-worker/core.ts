import type { IdentityConfig } from "@/lib/config/identity";
import type { Db } from "@/lib/db/client";
import type { Logger } from "@/lib/log";
import { TokenVerifier } from "./identity/token-verifier";
import { PolicyStore } from "./policy/store";

export interface EnforcementCore {
  policy: PolicyStore;
  tokens: TokenVerifier;
  close(): Promise<void>;
}

/** The worker's state: the policy snapshot kept current from Postgres, and the token verifier fed by it. */
export async function startEnforcementCore(options: {
  db: Db;
  databaseUrl: string;
  log: Logger;
  identity: IdentityConfig;
  reconcileIntervalMs: number;
}): Promise<EnforcementCore> {
  const policy = new PolicyStore(options.db, options.databaseUrl, options.log, options.reconcileIntervalMs);
  const tokens = new TokenVerifier(options.identity, (jti) => options.db.issuedToken.findUnique({ where: { jti }, select: { taskId: true, agentId: true, revokedAt: true, expiresAt: true } }));
  tokens.onUnusableKeys = (unusable) => {
    if (unusable.length > 0) options.log.error({ unusable }, "signing-key rows that are not usable public keys were left out: tokens they signed are refused");
  };
  policy.onSnapshot((snapshot) => tokens.applySnapshot(snapshot));
  await policy.start();
  return { policy, tokens, close: () => policy.close() };
}
