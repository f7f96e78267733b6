import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { packageRoot } from "@/lib/package-root";
import { redactDatabaseUrl } from "./url";

/**
 * Applies the committed SQL migrations in prisma/migrations, offline, without Prisma's schema
 * engine. It keeps Prisma's bookkeeping (`_prisma_migrations`, SHA-256 checksums, the same advisory
 * lock key) so `prisma migrate deploy` accepts a database migrated here, and vice versa.
 */
export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationError";
  }
}

/** Prisma Migrate's advisory lock key: runs of either tool serialise against each other. */
const ADVISORY_LOCK_KEY = 72707369;

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

/** The migrations that ship with this code (not the working directory's: lib/package-root.ts). */
export function defaultMigrationsDir(): string {
  return path.join(packageRoot(), "prisma", "migrations");
}

export async function readMigrations(dir: string = defaultMigrationsDir()): Promise<MigrationFile[]> {
  if (!existsSync(dir)) throw new MigrationError(`Migrations folder ${dir} does not exist.`);
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const file = path.join(dir, name, "migration.sql");
    if (!existsSync(file)) throw new MigrationError(`Migration ${name} has no migration.sql.`);
    const sql = await readFile(file, "utf8");
    files.push({ name, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  return files;
}

const CREATE_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/**
 * Connects with `databaseUrl`; an unreachable server is said with the URL (password hidden) and
 * the variable it came from (`variable`, DATABASE_URL by default), the one the person can check.
 */
export async function connectForMigration(databaseUrl: string, variable = "DATABASE_URL"): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new MigrationError(
      `Cannot reach the database at ${redactDatabaseUrl(databaseUrl)}: ${error instanceof Error ? error.message : String(error)}. ` +
        `Check ${variable} (or unset the database URLs to use the embedded PostgreSQL).`,
    );
  }
  return client;
}

/** Checks the recorded state against the files; returns the migrations still to apply. */
export function planMigrations(files: MigrationFile[], applied: AppliedRow[]): MigrationFile[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const done = new Set<string>();
  for (const row of applied) {
    if (row.rolled_back_at) continue;
    if (!row.finished_at) {
      throw new MigrationError(
        `Migration ${row.migration_name} was started but never finished (the database may be half-migrated). ` +
          "Nothing was changed. Inspect the database, then either complete the migration by hand or restore a backup, " +
          `and mark it resolved (UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = '${row.migration_name}' AND finished_at IS NULL).`,
      );
    }
    const file = byName.get(row.migration_name);
    if (!file) {
      throw new MigrationError(
        `The database has migration ${row.migration_name}, which this version of Bulkhead does not know. ` +
          "It was probably migrated by a newer version; run that version, or restore a backup. Nothing was changed.",
      );
    }
    if (file.checksum !== row.checksum) {
      throw new MigrationError(
        `Migration ${row.migration_name} was edited after it was applied (checksum ${row.checksum.slice(0, 12)}... in the database, ` +
          `${file.checksum.slice(0, 12)}... on disk). Applied migrations must never change: restore the original file ` +
          "and put the change in a new migration. Nothing was changed.",
      );
    }
    done.add(row.migration_name);
  }
  return files.filter((f) => !done.has(f.name));
}

export async function migrate(databaseUrl: string, dir: string = defaultMigrationsDir()): Promise<MigrateResult> {
  const files = await readMigrations(dir);
  const client = await connectForMigration(databaseUrl);
  try {
    await client.query("SELECT pg_advisory_lock($1)", [ADVISORY_LOCK_KEY]);
    try {
      await client.query(CREATE_TABLE);
      const { rows } = await client.query<AppliedRow>(
        'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at, migration_name',
      );
      const pending = planMigrations(files, rows);
      const applied: string[] = [];
      for (const file of pending) {
        await applyOne(client, file);
        applied.push(file.name);
      }
      return { applied, alreadyApplied: files.filter((f) => !applied.includes(f.name)).map((f) => f.name) };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [ADVISORY_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function applyOne(client: pg.Client, file: MigrationFile): Promise<void> {
  const id = randomUUID();
  await client.query("BEGIN");
  try {
    await client.query(
      'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())',
      [id, file.checksum, file.name],
    );
    await client.query(file.sql);
    await client.query(
      'UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1',
      [id],
    );
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw new MigrationError(
      `Migration ${file.name} failed and was rolled back; the database is as it was before it. ` +
        `PostgreSQL said: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}
