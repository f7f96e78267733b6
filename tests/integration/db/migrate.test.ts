import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectForMigration, defaultMigrationsDir, migrate, MigrationError, readMigrations } from "@/lib/db/migrate";
import { createTestDatabase, type TestDatabase } from "../../support/database";

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe("bulkhead db migrate", () => {
  let t: TestDatabase;
  let dir: string;
  const cleanups: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    t = await createTestDatabase({ migrate: false });
    dir = await mkdtemp(path.join(tmpdir(), "bh-migrations-"));
    await cp(defaultMigrationsDir(), dir, { recursive: true });
    cleanups.push(() => t.drop(), () => rm(dir, { recursive: true, force: true }));
  });
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  it("applies every migration to a fresh database and records Prisma-compatible checksums", async () => {
    const files = await readMigrations(dir);
    const result = await migrate(t.ownerUrl, dir);
    expect(result.applied).toEqual(files.map((f) => f.name));
    const rows = await query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
      t.ownerUrl,
      'SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name',
    );
    expect(rows.map((r) => [r.migration_name, r.checksum])).toEqual(files.map((f) => [f.name, f.checksum]));
    expect(rows.every((r) => r.finished_at !== null && r.applied_steps_count === 1)).toBe(true);
    const tables = await query<{ n: string }>(t.ownerUrl, "SELECT count(*)::text AS n FROM pg_tables WHERE tablename = 'agents'");
    expect(tables[0]?.n).toBe("1");
  });

  it("is a no-op when run again", async () => {
    await migrate(t.ownerUrl, dir);
    const again = await migrate(t.ownerUrl, dir);
    expect(again.applied).toEqual([]);
    const rows = await query<{ n: string }>(t.ownerUrl, 'SELECT count(*)::text AS n FROM "_prisma_migrations"');
    expect(Number(rows[0]?.n)).toBe((await readMigrations(dir)).length);
  });

  it("refuses to run when an applied migration file was edited, and changes nothing", async () => {
    await migrate(t.ownerUrl, dir);
    const [first] = await readMigrations(dir);
    const file = path.join(dir, first!.name, "migration.sql");
    await writeFile(file, `${await readFile(file, "utf8")}\n-- sneaky edit\n`);
    await mkdir(path.join(dir, "29990101000000_later"));
    await writeFile(path.join(dir, "29990101000000_later", "migration.sql"), "CREATE TABLE later_table (id int);");
    await expect(migrate(t.ownerUrl, dir)).rejects.toThrow(/was edited after it was applied/);
    const later = await query(t.ownerUrl, "SELECT 1 FROM pg_tables WHERE tablename = 'later_table'");
    expect(later).toHaveLength(0);
  });

  it("rolls back a failing migration completely and reports it", async () => {
    await migrate(t.ownerUrl, dir);
    await mkdir(path.join(dir, "29990101000000_broken"));
    await writeFile(
      path.join(dir, "29990101000000_broken", "migration.sql"),
      "CREATE TABLE half_done (id int);\nSELECT no_such_function();",
    );
    const error = await migrate(t.ownerUrl, dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect(String(error)).toMatch(/29990101000000_broken failed and was rolled back/);
    expect(await query(t.ownerUrl, "SELECT 1 FROM pg_tables WHERE tablename = 'half_done'")).toHaveLength(0);
    expect(await query(t.ownerUrl, `SELECT 1 FROM "_prisma_migrations" WHERE migration_name = '29990101000000_broken'`)).toHaveLength(0);
  });

  it("refuses a database left half-migrated by another tool", async () => {
    await migrate(t.ownerUrl, dir);
    await query(
      t.ownerUrl,
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name) VALUES ('x', 'abc', '29990101000000_interrupted')`,
    );
    await expect(migrate(t.ownerUrl, dir)).rejects.toThrow(/started but never finished/);
  });

  it("refuses a database migrated by a newer version", async () => {
    await migrate(t.ownerUrl, dir);
    await query(
      t.ownerUrl,
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at) VALUES ('y', 'abc', '29990101000000_future', now())`,
    );
    await expect(migrate(t.ownerUrl, dir)).rejects.toThrow(/does not know/);
  });

  it("serialises concurrent runs: each migration is applied exactly once", async () => {
    const results = await Promise.all([migrate(t.ownerUrl, dir), migrate(t.ownerUrl, dir), migrate(t.ownerUrl, dir)]);
    const appliedCount = results.reduce((n, r) => n + r.applied.length, 0);
    expect(appliedCount).toBe((await readMigrations(dir)).length);
    const rows = await query<{ n: string }>(t.ownerUrl, 'SELECT count(*)::text AS n FROM "_prisma_migrations"');
    expect(Number(rows[0]?.n)).toBe(appliedCount);
  });

  it("says clearly when the database cannot be reached", async () => {
    await expect(migrate("postgresql://nobody:secret@127.0.0.1:1/none", dir)).rejects.toThrow(
      /Cannot reach the database at postgresql:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/none/,
    );
  });

  it("names the variable the unreachable URL came from, not always DATABASE_URL", async () => {
    await expect(migrate("postgresql://nobody:secret@127.0.0.1:1/none", dir)).rejects.toThrow(/Check DATABASE_URL /);
    await expect(connectForMigration("postgresql://nobody:secret@127.0.0.1:1/none", "BULKHEAD_DASHBOARD_DATABASE_URL")).rejects.toThrow(/Check BULKHEAD_DASHBOARD_DATABASE_URL \(or unset the database URLs/);
  });

  it("masks a password given in the URL's query (libpq's ?password=) as well", async () => {
    const error = await migrate("postgresql://nobody@127.0.0.1:1/none?sslmode=disable&password=Query-Pw-7731&sslpassword=Key-Pw-7731", dir).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toMatch(/Cannot reach the database at postgresql:\/\/nobody@127\.0\.0\.1:1\/none\?sslmode=disable&password=\*\*\*&sslpassword=\*\*\*/);
    expect(error!.message).not.toMatch(/7731/);
  });
});
