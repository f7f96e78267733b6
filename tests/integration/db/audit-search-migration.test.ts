import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { migrate } from "@/lib/db/migrate";
import { createTestDatabase, type TestDatabase } from "../../support/database";

/** The audit search migration installs pg_trgm out of the schema public, or uses an existing installation. */
describe("migration 20261201010000_audit_search", () => {
  const dbs: TestDatabase[] = [];
  afterAll(async () => {
    for (const t of dbs) await t.drop();
  });

  async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<T>(sql)).rows;
    } finally {
      await c.end();
    }
  }

  const trgmSchema = (url: string) =>
    query<{ nspname: string }>(url, "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'");
  const indexDef = async (url: string) => (await query<{ def: string }>(url, "SELECT pg_get_indexdef('audit_events_search_text_idx'::regclass) AS def"))[0]!.def;

  it("puts pg_trgm in a schema of its own, so no function of it lands in public", async () => {
    const t = await createTestDatabase({ migrate: "here" });
    dbs.push(t);
    expect(await trgmSchema(t.url)).toEqual([{ nspname: "bulkhead_extensions" }]);
    expect(await indexDef(t.url)).toContain("bulkhead_extensions.gin_trgm_ops");
    const inPublic = await query<{ proname: string }>(t.url, "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname ~ 'trgm|similarity'");
    expect(inPublic).toEqual([]);
  });

  it("uses pg_trgm where a database already has it", async () => {
    const t = await createTestDatabase({ migrate: false });
    dbs.push(t);
    await query(t.adminUrl, "CREATE EXTENSION pg_trgm");
    await migrate(t.ownerUrl);
    expect(await trgmSchema(t.url)).toEqual([{ nspname: "public" }]);
    expect(await indexDef(t.url)).toContain("gin_trgm_ops");
  });
});
