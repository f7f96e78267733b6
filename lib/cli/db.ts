import { loadCommonConfig } from "@/lib/config/common";
import { migrate } from "@/lib/db/migrate";
import { openDatabase } from "@/lib/runtime/database";
import { CliError, type CommandHandler } from "./context";

export const dbCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  if (sub !== "migrate" || rest.length > 0) throw new CliError('usage: bulkhead db migrate', 2);
  const opened = await openDatabase(loadCommonConfig(), { running: "reuse", log: (l) => ctx.stderr(l) });
  try {
    const result = await migrate(opened.url);
    if (ctx.json) ctx.stdout(JSON.stringify(result));
    else if (result.applied.length === 0) ctx.stdout(`Database is up to date (${result.alreadyApplied.length} migrations applied).`);
    else ctx.stdout(`Applied ${result.applied.length} migration(s): ${result.applied.join(", ")}`);
    return 0;
  } finally {
    await opened.close();
  }
};
