import path from "node:path";
import { z } from "zod";
import { decodeMasterKeyText } from "@/lib/crypto/master-key-text";
import { ConfigError, optionalString, parseEnv, port, postgresUrl } from "./env";

const optionalUrl = postgresUrl.optional().or(z.literal("").transform(() => undefined));
const flag = z
  .enum(["", "0", "1", "false", "true"], { error: "must be true or false" })
  .optional()
  .transform((v) => v === "1" || v === "true");

/** Which database role a runtime process connects as (docs/database.md). */
export type RuntimeDatabaseRole = "dashboard" | "worker";

export const RUNTIME_DATABASE_URL_VARIABLE: Record<RuntimeDatabaseRole, string> = {
  dashboard: "BULKHEAD_DASHBOARD_DATABASE_URL",
  worker: "BULKHEAD_WORKER_DATABASE_URL",
};

const commonSchema = z.object({
  /** The owner role: migrations (and `bulkhead start`, which runs them). */
  DATABASE_URL: optionalUrl,
  /** The dashboard's (and the CLI's) own role. */
  BULKHEAD_DASHBOARD_DATABASE_URL: optionalUrl,
  /** The proxy worker's own role. */
  BULKHEAD_WORKER_DATABASE_URL: optionalUrl,
  /** Explicit opt-out of least privilege for an external database: every process uses DATABASE_URL. */
  BULKHEAD_DATABASE_SINGLE_ROLE: flag,
  BULKHEAD_DATA_DIR: z.string().default(".data"),
  BULKHEAD_PG_PORT: port.default(54329),
  /** Checked here with every other variable, before anything starts (it was checked only after the database had started and been migrated, in words that did not name the variable). */
  BULKHEAD_MASTER_KEY: optionalString.superRefine((value, ctx) => {
    if (value === undefined) return;
    const decoded = decodeMasterKeyText(value);
    if ("problem" in decoded) ctx.addIssue({ code: "custom", message: decoded.problem.replace(/^master key /, "") });
  }),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export interface CommonConfig {
  /** The owner's URL (migrations) for an external Postgres; unset with the embedded one. */
  databaseUrl: string | undefined;
  /** The runtime roles' URLs for an external Postgres (the launcher makes them for the embedded one). */
  runtimeDatabaseUrls: Record<RuntimeDatabaseRole, string | undefined>;
  /** An external Postgres is configured (any of the three URLs); otherwise the embedded one runs. */
  externalDatabase: boolean;
  /** BULKHEAD_DATABASE_SINGLE_ROLE: runtime processes may use DATABASE_URL when their own URL is unset. */
  singleDatabaseRole: boolean;
  dataDir: string;
  embeddedPgPort: number;
  masterKey: string | undefined;
  logLevel: z.output<typeof commonSchema>["LOG_LEVEL"];
}

export function loadCommonConfig(source: Record<string, string | undefined> = process.env): CommonConfig {
  const env = parseEnv(commonSchema, source);
  return {
    databaseUrl: env.DATABASE_URL,
    runtimeDatabaseUrls: { dashboard: env.BULKHEAD_DASHBOARD_DATABASE_URL, worker: env.BULKHEAD_WORKER_DATABASE_URL },
    externalDatabase: Boolean(env.DATABASE_URL || env.BULKHEAD_DASHBOARD_DATABASE_URL || env.BULKHEAD_WORKER_DATABASE_URL),
    singleDatabaseRole: env.BULKHEAD_DATABASE_SINGLE_ROLE,
    dataDir: path.resolve(env.BULKHEAD_DATA_DIR),
    embeddedPgPort: env.BULKHEAD_PG_PORT,
    masterKey: env.BULKHEAD_MASTER_KEY,
    logLevel: env.LOG_LEVEL,
  };
}

/**
 * The database URL a running dashboard or worker connects with: its own role's variable (the
 * launcher always provides it). DATABASE_URL, the owner's, is used only when the operator opted
 * out of separate roles with BULKHEAD_DATABASE_SINGLE_ROLE; there is no silent fallback.
 */
export function requireRuntimeDatabaseUrl(role: RuntimeDatabaseRole, source: Record<string, string | undefined> = process.env): string {
  const variable = RUNTIME_DATABASE_URL_VARIABLE[role];
  const config = loadCommonConfig(source);
  const url = config.runtimeDatabaseUrls[role] ?? (config.singleDatabaseRole ? config.databaseUrl : undefined);
  if (url) return url;
  throw new ConfigError([
    `${variable} is required and it is not set: start Bulkhead with \`npm start\` (which provides it), or set it to the ${role}'s own database role ` +
      "(docs/database.md). BULKHEAD_DATABASE_SINGLE_ROLE=true runs every process as DATABASE_URL instead, without least privilege.",
  ]);
}
