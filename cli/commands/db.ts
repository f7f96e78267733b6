import { loadCommonConfig } from "@/lib/config/common";
import { DEFAULT_ROLE_NAMES, databaseNameFromUrl, roleNameFromUrl, type RoleNames } from "@/lib/db/roles/names";
import { rolesSql } from "@/lib/db/roles/sql";
import { parseFlags } from "../args";
import { CliError, type CliContext, type CommandHandler } from "../context";
import { usageLine } from "../help";

const USAGE = usageLine("db");

export const dbCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  if (sub === "migrate" && rest.length === 0) return migrateCommand(ctx);
  if (sub === "roles") return rolesCommand(rest, ctx);
  throw new CliError(USAGE, 2);
};

/** Migrations as the owner role, then the runtime roles' grants; prints what changed. */
async function migrateCommand(ctx: CliContext): Promise<number> {
  // Loaded here, not at the top: `db roles` connects to nothing and loads no database code.
  const [{ openDatabase }, { migrateDatabase }] = await Promise.all([import("@/cli/runtime/database"), import("@/cli/runtime/database-roles")]);
  const opened = await openDatabase(loadCommonConfig(), { running: "reuse", log: (l) => ctx.stderr(l) });
  try {
    const result = await migrateDatabase(opened.urls, (l) => ctx.stderr(l));
    if (ctx.json) ctx.stdout(JSON.stringify(result));
    else if (result.applied.length === 0) ctx.stdout(`Database is up to date (${result.alreadyApplied.length} migrations applied).`);
    else ctx.stdout(`Applied ${result.applied.length} migration(s): ${result.applied.join(", ")}`);
    return 0;
  } finally {
    await opened.close();
  }
}

/**
 * Prints the SQL that sets up the roles on an external PostgreSQL (docs/database.md). Names come
 * from the flags, else from the configured URLs, else the defaults the embedded database uses.
 * It connects to nothing: a DBA reviews and runs it.
 */
async function rolesCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(args, { owner: { type: "string" }, dashboard: { type: "string" }, worker: { type: "string" }, database: { type: "string" } });
  const config = loadCommonConfig();
  const fromUrl = (url: string | undefined) => (url ? roleNameFromUrl(url) : undefined);
  const names: RoleNames = {
    owner: values.owner ?? fromUrl(config.databaseUrl) ?? DEFAULT_ROLE_NAMES.owner,
    dashboard: values.dashboard ?? fromUrl(config.runtimeDatabaseUrls.dashboard) ?? DEFAULT_ROLE_NAMES.dashboard,
    worker: values.worker ?? fromUrl(config.runtimeDatabaseUrls.worker) ?? DEFAULT_ROLE_NAMES.worker,
  };
  const database = values.database ?? (config.databaseUrl ? databaseNameFromUrl(config.databaseUrl) : "bulkhead");
  for (const [what, name] of Object.entries({ ...names, database })) {
    if (name.trim() === "" || name.length > 63) throw new CliError(`--${what} must be a PostgreSQL name of 1 to 63 characters`, 2);
    // The names also go into the SQL's comments and a psql hint, where a line break would start a
    // statement of its own (`x\nDROP DATABASE bulkhead;`) in a script a superuser runs.
    if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) throw new CliError(`--${what} must not contain control characters (line breaks, tabs, escapes)`, 2);
  }
  if (new Set([names.owner, names.dashboard, names.worker]).size !== 3) throw new CliError("--owner, --dashboard and --worker must be three different roles", 2);
  const sql = rolesSql(names, database);
  ctx.stdout(ctx.json ? JSON.stringify({ ...names, database, sql }) : sql.trimEnd());
  return 0;
}
