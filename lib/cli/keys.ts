import { rotateKeys } from "@/lib/identity/key-store";
import { MAX_TOKEN_TTL_SECONDS } from "@/lib/tasks/settings";
import { CliError, type CommandHandler } from "./context";
import { CLI_ACTOR, withCliMasterKey } from "./database";

export const keysCommand: CommandHandler = async (args, ctx) => {
  if (args[0] !== "rotate" || args.length > 1) throw new CliError("usage: bulkhead keys rotate", 2);
  // Tokens live at most MAX_TOKEN_TTL_SECONDS, which bounds how long a retiring key must verify.
  const change = await withCliMasterKey(ctx, (db, key) => rotateKeys(db, CLI_ACTOR, key, { maxTokenTtlSeconds: MAX_TOKEN_TTL_SECONDS }));
  if (ctx.json) {
    ctx.stdout(JSON.stringify({ kid: change.added.kid, retiring: change.retiring.map((r) => ({ kid: r.kid, verifyUntil: r.verifyUntil.toISOString() })) }));
  } else {
    ctx.stdout(`New signing key ${change.added.kid} signs from now on.`);
    for (const r of change.retiring) ctx.stdout(`Key ${r.kid} verifies until ${r.verifyUntil.toISOString()}, then retires.`);
  }
  return 0;
};
