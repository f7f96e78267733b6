import { childEnvironments, type ChildEnvironments } from "@/lib/config/child-env";
import type { Db } from "@/lib/db/client";
import { ensureSigningKey } from "@/lib/identity/key-store";
import { establishProcessKeys } from "@/lib/keys/establish";
import { dashboardKeyEnvironment, workerKeyEnvironment } from "@/lib/keys/process-keys";

export interface ProcessSecretsOptions {
  master: Buffer;
  dataDir: string;
  /** Each child's own database variables (its own role's URL). */
  databaseEnv: { dashboard: Record<string, string | undefined>; worker: Record<string, string | undefined> };
  authSecret: string;
  oidcClientSecret?: string;
  say: (line: string) => void;
  /** The launcher's own environment, which children inherit minus its secrets (default: this process's). */
  environment?: Record<string, string | undefined>;
}

/**
 * The launcher's key step: checks the master key against the data, converts secrets still sealed
 * under it (resumably), makes sure a task-token signing key exists, and returns each child's
 * environment with only that child's own secrets (lib/config/child-env.ts). The master key itself
 * stays in the launcher.
 */
export async function prepareProcessSecrets(db: Db, o: ProcessSecretsOptions): Promise<ChildEnvironments> {
  const { keys, converted } = await establishProcessKeys(db, o.master, o.dataDir);
  for (const [label, n] of Object.entries(converted)) o.say(`Converted ${n} ${label}(s) from the master key to per-process keys.`);
  const kid = await ensureSigningKey(db, keys.dashboardKey);
  if (kid) o.say(`Created the task-token signing key ${kid}.`);
  return childEnvironments(
    {
      databaseEnv: o.databaseEnv,
      authSecret: o.authSecret,
      oidcClientSecret: o.oidcClientSecret,
      keys: { dashboard: dashboardKeyEnvironment(keys), worker: workerKeyEnvironment(keys) },
    },
    o.environment,
  );
}
