import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { migrate } from "@/lib/db/migrate";
import { createTestDatabase, type TestDatabase } from "../../support/database";

const MIGRATIONS = path.resolve("prisma/migrations");
const MIGRATION = "20261207002000_retired_secrets";

/**
 * Migration 20261207002000_retired_secrets moves the one retired secret a credential kept
 * (credentials.retired_secret_sealed) into retired_secrets, unchanged, and drops the column.
 */
describe(`migration ${MIGRATION}`, () => {
  const dbs: TestDatabase[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const t of dbs) await t.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function query<T extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<T>(sql, values)).rows;
    } finally {
      await c.end();
    }
  }

  it("moves each credential's retired secret, sealed as it was, as a rotation at its rotated_at, and drops the column", async () => {
    const t = await createTestDatabase({ migrate: false });
    dbs.push(t);
    // Every migration before this one, then a database as the previous version left it.
    const before = mkdtempSync(path.join(tmpdir(), "bh-migrations-"));
    dirs.push(before);
    for (const name of readdirSync(MIGRATIONS)) if (name < MIGRATION) cpSync(path.join(MIGRATIONS, name), path.join(before, name), { recursive: true });
    await migrate(t.ownerUrl, before);
    const rotatedAt = new Date("2026-12-01T10:00:00.000Z");
    const [rotated] = await query<{ id: string }>(
      t.ownerUrl,
      `INSERT INTO credentials (name, scheme, host, port, service_id, environments, header_template, secret_sealed, retired_secret_sealed, rotated_at)
       VALUES ('rotated', 'https', 'api.example.test', 443, 'github', '*', 'Authorization: Bearer {secret}', 'sb1.current', 'sb1.retired-as-sealed', $1) RETURNING id::text`,
      [rotatedAt],
    );
    await query(t.ownerUrl, `INSERT INTO credentials (name, scheme, host, port, header_template, secret_sealed) VALUES ('never-rotated', 'https', 'other.example.test', 8443, 'X-Key: {secret}', 'sb1.only')`);

    await migrate(t.ownerUrl);
    const rows = await query<Record<string, unknown>>(
      t.ownerUrl,
      `SELECT credential_id::text, credential_name, service_id, scheme, host, port, header_template, secret_sealed, reason::text, retired_at FROM retired_secrets`,
    );
    expect(rows).toEqual([
      {
        credential_id: rotated!.id,
        credential_name: "rotated",
        service_id: "github",
        scheme: "https",
        host: "api.example.test",
        port: 443,
        header_template: "Authorization: Bearer {secret}",
        secret_sealed: "sb1.retired-as-sealed",
        reason: "rotated",
        retired_at: rotatedAt,
      },
    ]);
    const columns = await query<{ column_name: string }>(t.ownerUrl, `SELECT column_name FROM information_schema.columns WHERE table_name = 'credentials' AND column_name LIKE '%retired%'`);
    expect(columns).toEqual([]);
    expect((await query<{ secret_sealed: string }>(t.ownerUrl, `SELECT secret_sealed FROM credentials ORDER BY name`)).map((r) => r.secret_sealed)).toEqual(["sb1.only", "sb1.current"]);
  });
});
