import path from "node:path";
import { z } from "zod";
import { optionalString, parseEnv, port, postgresUrl } from "./env";

const commonSchema = z.object({
  DATABASE_URL: postgresUrl.optional().or(z.literal("").transform(() => undefined)),
  BULKHEAD_DATA_DIR: z.string().default(".data"),
  BULKHEAD_PG_PORT: port.default(54329),
  BULKHEAD_MASTER_KEY: optionalString,
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export interface CommonConfig {
  /** Set when an external Postgres is used; otherwise the embedded one is started. */
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPgPort: number;
  masterKey: string | undefined;
  logLevel: z.output<typeof commonSchema>["LOG_LEVEL"];
}

export function loadCommonConfig(source: Record<string, string | undefined> = process.env): CommonConfig {
  const env = parseEnv(commonSchema, source);
  return {
    databaseUrl: env.DATABASE_URL,
    dataDir: path.resolve(env.BULKHEAD_DATA_DIR),
    embeddedPgPort: env.BULKHEAD_PG_PORT,
    masterKey: env.BULKHEAD_MASTER_KEY,
    logLevel: env.LOG_LEVEL,
  };
}

/** The database URL a running app or worker must have (the launcher always provides it). */
export function requireDatabaseUrl(source: Record<string, string | undefined> = process.env): string {
  const schema = z.object({
    DATABASE_URL: z
      .string({ error: "is required: start Bulkhead with `npm start` (which provides it) or point it at your Postgres" })
      .pipe(postgresUrl),
  });
  return parseEnv(schema, source).DATABASE_URL;
}
