import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../support/database";

/**
 * Test files' databases are copies of one the global setup migrated (tests/support/database.ts):
 * a copy must be what migrating a database of its own gives, objects, owners and privileges alike
 * (the database's own owner and privileges are not copied, and are set again).
 */
const STATE = `
SELECT 'database' AS kind, '' AS name, pg_get_userbyid(datdba) AS owner, datacl::text AS acl FROM pg_database WHERE datname = current_database()
UNION ALL SELECT 'schema', nspname, pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
UNION ALL SELECT 'relation ' || c.relkind::text, n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner), c.relacl::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
UNION ALL SELECT 'routine', p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.proacl::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
UNION ALL SELECT 'trigger', tgrelid::regclass::text || '.' || tgname, '', pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'column', attrelid::regclass::text || '.' || attname, format_type(atttypid, atttypmod), pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
UNION ALL SELECT 'default acl', defaclrole::regrole::text || ' ' || defaclobjtype::text, '', defaclacl::text FROM pg_default_acl
UNION ALL SELECT 'extension', extname, pg_get_userbyid(extowner), extnamespace::regnamespace::text FROM pg_extension
UNION ALL SELECT 'migration', migration_name, checksum, (finished_at IS NOT NULL)::text FROM _prisma_migrations
UNION ALL SELECT 'audit chain head', id::text, seq::text, hash FROM audit_chain_head
ORDER BY 1, 2`;

async function state(url: string): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(STATE)).rows;
  } finally {
    await c.end();
  }
}

describe("a test file's database, copied from the run's migrated template", () => {
  let copied: TestDatabase;
  let migrated: TestDatabase;
  beforeAll(async () => {
    copied = await createTestDatabase();
    migrated = await createTestDatabase({ migrate: "here" });
  });
  afterAll(async () => {
    await copied?.drop();
    await migrated?.drop();
  });

  it("has the objects, owners and privileges of a database migrated on its own", async () => {
    const a = await state(copied.adminUrl);
    expect(a.length).toBeGreaterThan(100);
    expect(a).toEqual(await state(migrated.adminUrl));
  });
});
