import { dataFolderOwner } from "@/cli/runtime/data-folder-lock";
import { loadSignerKey } from "@/lib/audit/outside/signer-key";
import { loadAuditCheckpointConfig } from "@/lib/config/audit-checkpoints";
import { loadCommonConfig } from "@/lib/config/common";
import { rotateKeys } from "@/lib/identity/key-store";
import { readMasterFingerprint, readStagedFingerprint, resolveMasterKey } from "@/lib/identity/master-key";
import { readKeyGeneration } from "@/lib/keys/generation";
import { dashboardKeyEnvironment, workerKeyEnvironment } from "@/lib/keys/process-keys";
import { sealedValueCounts } from "@/lib/keys/reseal";
import { holdRotationLock, rotateMasterKey } from "@/lib/keys/rotate-master";
import { MAX_TOKEN_TTL_SECONDS } from "@/lib/tasks/settings";
import type { CliContext } from "../context";
import { usageLine } from "../help";
import { CliError, type CommandHandler } from "../context";
import { CLI_ACTOR, withCliDatabase, withCliKeys } from "../database";

const USAGE = usageLine("keys");

async function rotateSigning(ctx: CliContext): Promise<number> {
  // Tokens live at most MAX_TOKEN_TTL_SECONDS, which bounds how long a retiring key must verify.
  const change = await withCliKeys(ctx, (db, keys) => rotateKeys(db, CLI_ACTOR, keys.dashboardKey, { maxTokenTtlSeconds: MAX_TOKEN_TTL_SECONDS }));
  if (ctx.json) {
    ctx.stdout(JSON.stringify({ kid: change.added.kid, retiring: change.retiring.map((r) => ({ kid: r.kid, verifyUntil: r.verifyUntil.toISOString() })) }));
  } else {
    ctx.stdout(`New signing key ${change.added.kid} signs from now on.`);
    for (const r of change.retiring) ctx.stdout(`Key ${r.kid} verifies until ${r.verifyUntil.toISOString()}, then retires.`);
  }
  return 0;
}

async function rotateMaster(ctx: CliContext): Promise<number> {
  const config = loadCommonConfig();
  // Its dashboard and worker hold keys derived from the current master key: after the switch they
  // can no longer mint tokens, write secrets or restart, so the rotation is refused while they run
  // here (Bulkhead elsewhere, on an external database, is the operator's to stop: docs/identity.md).
  const running = dataFolderOwner(config.dataDir);
  if (running?.command === "start") {
    throw new CliError(
      `Bulkhead is running on the data folder ${config.dataDir} (bulkhead start, pid ${running.pid}): stop it first (Ctrl-C where it runs), then rotate, then start it again. Its processes hold keys derived from the current master key. Nothing was changed.`,
      2,
    );
  }
  const current = resolveMasterKey(config.masterKey, config.dataDir, { create: false });
  let done = 0;
  const result = await withCliDatabase(ctx, async (db, url) => {
    const release = await holdRotationLock(url);
    try {
      return await rotateMasterKey({
        db,
        dataDir: config.dataDir,
        current,
        actor: CLI_ACTOR,
        onResealed: () => {
          if (++done % 100 === 0 && !ctx.json) ctx.stderr(`Resealed ${done} secrets...`);
        },
      });
    } finally {
      await release();
    }
  }, { role: "owner" });
  if (ctx.json) {
    ctx.stdout(JSON.stringify(result));
    return 0;
  }
  const counts = Object.entries(result.resealed).map(([label, n]) => `${n} ${label}(s)`).join(", ") || "nothing left to reseal";
  ctx.stdout(`Master key rotated: ${result.from} -> ${result.to} (${counts}).`);
  if (result.setEnvironment) {
    ctx.stdout(`The new master key is in ${result.keyFile}: set BULKHEAD_MASTER_KEY to its contents, then delete the file.`);
  } else {
    ctx.stdout(`The new master key replaced the old one in ${result.keyFile}; the old key is gone. Back up the new one.`);
  }
  ctx.stdout(`Checkpoints signed before the rotation verify with ${result.retiredCheckpointKey.keyId} (kept in the data folder).`);
  ctx.stdout("Restart Bulkhead: running processes still hold keys derived from the old master key.");
  return 0;
}

async function env(which: string | undefined, ctx: CliContext): Promise<number> {
  if (which !== "dashboard" && which !== "worker") throw new CliError(USAGE, 2);
  const vars = await withCliKeys(ctx, async (_db, keys) => (which === "dashboard" ? dashboardKeyEnvironment(keys) : workerKeyEnvironment(keys)));
  if (ctx.json) ctx.stdout(JSON.stringify(vars));
  else for (const [name, value] of Object.entries(vars)) ctx.stdout(`${name}=${value}`);
  return 0;
}

async function status(ctx: CliContext): Promise<number> {
  const result = await withCliDatabase(ctx, async (db) => ({
    master: await readMasterFingerprint(db),
    rotationTo: await readStagedFingerprint(db),
    generation: await readKeyGeneration(db),
    sealed: await sealedValueCounts(db),
  }));
  if (ctx.json) {
    ctx.stdout(JSON.stringify(result));
    return 0;
  }
  ctx.stdout(`Master key: ${result.master ?? "none recorded yet"}${result.rotationTo ? ` (rotation to ${result.rotationTo} unfinished)` : ""}`);
  if (result.generation) {
    const g = result.generation;
    ctx.stdout(`Dashboard key: ${g.dashboard}   Worker key: ${g.worker}`);
    // The master-derived checkpoint key only verifies format-1 checkpoints; the launcher signs with
    // a key of its own (audit-signer.key), which `bulkhead audit key` prints and the checkpoints name.
    const signerFile = loadAuditCheckpointConfig(loadCommonConfig().dataDir).signerKeyFile;
    let signer: string;
    try {
      signer = loadSignerKey(signerFile, { create: false })?.publicKey.keyId ?? `none yet (${signerFile} is created on first start)`;
    } catch (error) {
      signer = `unreadable (${error instanceof Error ? error.message : String(error)})`;
    }
    ctx.stdout(`Checkpoint signer key: ${signer}   Format-1 checkpoint key (verifies old checkpoints only): ${g.checkpointKeyId}`);
  }
  for (const s of result.sealed) ctx.stdout(`${s.count} ${s.label}(s) sealed with ${s.fingerprint}`);
  return 0;
}

export const keysCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  if (sub === "rotate" && rest.length === 0) return rotateSigning(ctx);
  if (sub === "rotate-master" && rest.length === 0) return rotateMaster(ctx);
  if (sub === "env" && rest.length === 1) return env(rest[0], ctx);
  if (sub === "status" && rest.length === 0) return status(ctx);
  throw new CliError(USAGE, 2);
};
