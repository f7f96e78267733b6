import { DirectoryCheckpointSink } from "@/lib/audit/outside/directory";
import { loadSignerKey, type SignerKey } from "@/lib/audit/outside/signer-key";
import { startCheckpointSigner } from "@/lib/audit/outside/signer";
import type { CheckpointKey } from "@/lib/audit/checkpoints";
import { loadAuditCheckpointConfig } from "@/lib/config/audit-checkpoints";
import { createPrismaClient } from "@/lib/db/client";

export interface LauncherSigner {
  publicKey: CheckpointKey;
  /** The key itself, for the launcher's own use only (retention signs archives' manifests with it). */
  key: SignerKey;
  stop(): Promise<void>;
}

/**
 * The checkpoint signer, run by the launcher itself (docs/audit.md, "Checkpoints outside the
 * database"): the launcher already holds what no child may (the master key, the owner's URL),
 * it outlives worker restarts, and it serves no requests, so an agent's or a browser's input
 * never reaches the process that holds the signer key. It connects as the dashboard's role,
 * which may insert checkpoints and nothing more in the audit. A failed round is said once (and
 * again when the reason changes), then retried every interval.
 */
export function startLauncherSigner(o: { dataDir: string; databaseUrl: string; say: (line: string) => void }): LauncherSigner {
  const config = loadAuditCheckpointConfig(o.dataDir);
  const key = loadSignerKey(config.signerKeyFile, { create: true })!;
  if (key.created) o.say(`Created the audit checkpoint signer key in ${config.signerKeyFile} (owner-only; its public half is ${key.publicKey.keyId}).`);
  const db = createPrismaClient(o.databaseUrl, 1);
  let lastError = "";
  const loop = startCheckpointSigner({
    db,
    key,
    sink: new DirectoryCheckpointSink(config.sinkDir),
    intervalMs: config.intervalMs,
    onError: (error) => {
      if (error.message === lastError) return;
      lastError = error.message;
      o.say(`Audit checkpoint signer: ${error.message}`);
    },
  });
  o.say(`Audit checkpoints: signed by ${key.publicKey.keyId} every ${config.intervalMs} ms, published to ${config.sinkDir}`);
  return {
    publicKey: key.publicKey,
    key,
    async stop() {
      await loop.stop();
      await db.$disconnect();
    },
  };
}
