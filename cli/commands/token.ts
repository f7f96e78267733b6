import { loadIdentityConfig } from "@/lib/config/identity";
import { isTokenError } from "@/lib/identity/errors";
import { issueTaskToken, revokeTaskToken, verifyTaskTokenNow } from "@/lib/identity/task-tokens";
import { parseFlags, requireFlag } from "../args";
import { CliError, type CommandHandler } from "../context";
import { usageLine } from "../help";
import { CLI_ACTOR, withCliDatabase, withCliKeys } from "../database";
import { pullSwitch } from "../already-done";

export const tokenCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  const identity = loadIdentityConfig();
  switch (sub) {
    case "mint": {
      const { values } = parseFlags(rest, { task: { type: "string" } });
      const taskId = requireFlag(values.task, "task");
      const issued = await withCliKeys(ctx, (db, keys) => issueTaskToken(db, CLI_ACTOR, keys.dashboardKey, identity, taskId));
      // The token alone on stdout, so `TOKEN=$(bulkhead token mint --task ID)` works.
      ctx.stdout(ctx.json ? JSON.stringify({ token: issued.token, jti: issued.jti, kid: issued.kid, expiresAt: issued.expiresAt.toISOString() }) : issued.token);
      return 0;
    }
    case "verify": {
      const { positionals } = parseFlags(rest, {}, 1);
      const token = positionals[0];
      if (!token) throw new CliError("usage: bulkhead token verify TOKEN", 2);
      try {
        const verified = await withCliDatabase(ctx, (db) => verifyTaskTokenNow(db, identity, token));
        ctx.stdout(JSON.stringify(verified.claims));
        return 0;
      } catch (error) {
        // The reason's code for scripts, then what it means for a person ("jti_revoked" alone left them to guess).
        if (isTokenError(error)) throw new CliError(`invalid token: ${error.reason}: ${error.userMessage}`);
        throw error;
      }
    }
    case "revoke": {
      const { positionals } = parseFlags(rest, {}, 1);
      const jti = positionals[0];
      if (!jti) throw new CliError("usage: bulkhead token revoke JTI", 2);
      const { unchanged } = await withCliDatabase(ctx, (db) => pullSwitch(revokeTaskToken(db, CLI_ACTOR, jti)));
      if (ctx.json) ctx.stdout(JSON.stringify({ jti, revoked: true, changed: unchanged === null, ...(unchanged ? { message: unchanged } : {}) }));
      else ctx.stdout(unchanged ? `Token ${jti}: ${unchanged}` : `Token ${jti} revoked.`);
      return 0;
    }
    default:
      throw new CliError(usageLine("token"), 2);
  }
};
