import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { isDatabaseUnavailable, isUniqueViolation } from "@/lib/db/errors";
import { makeUser } from "../../support/factories";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { DatabaseLink } from "../../support/database-link";
import { DatabaseOutage } from "../audit/helpers";

/**
 * What the dashboard's client sees when its PostgreSQL is down, stops answering or is too slow,
 * through a real link that fails (tests/support/database-link.ts): each is recognised as "the
 * database is unavailable" (503, try again) and never mistaken for a fault of the request; the
 * timeouts end a hung query instead of holding it forever; the pool recovers once the link does.
 */
describe("a database that is unavailable", () => {
  let t: TestDatabase;
  let link: DatabaseLink;
  let db: Db;

  beforeAll(async () => {
    t = await createTestDatabase();
    const u = new URL(t.url);
    link = await new DatabaseLink({ host: u.hostname, port: Number(u.port) }).start();
    db = createPrismaClient(link.urlFor(t.url), 2, { statementTimeoutMs: 300, queryTimeoutMs: 1_500 });
  });
  afterAll(async () => {
    await db.$disconnect();
    await link.stop();
    await t.drop();
  });

  const failure = async (run: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> => {
    const started = Date.now();
    try {
      await run();
    } catch (error) {
      return { error, ms: Date.now() - started };
    }
    throw new Error("expected the query to fail");
  };

  it("is told apart from errors of the request itself", async () => {
    expect(await db.agent.count()).toBe(0); // the link passes
    const user = await makeUser(db, "admin");
    const duplicate = await failure(() => db.user.create({ data: { email: user.email, role: "admin" } }));
    expect(isUniqueViolation(duplicate.error)).toBe(true);
    expect(isDatabaseUnavailable(duplicate.error)).toBe(false);
    const syntax = await failure(() => db.$queryRawUnsafe("SELEC 1"));
    expect(isDatabaseUnavailable(syntax.error)).toBe(false);
    expect(isDatabaseUnavailable(new Error("Agent not found"))).toBe(false);
    expect(isDatabaseUnavailable(null)).toBe(false);
  });

  it("a statement slower than the statement timeout", async () => {
    const slow = await failure(() => db.$queryRawUnsafe("SELECT pg_sleep(2)"));
    expect(isDatabaseUnavailable(slow.error), String(slow.error)).toBe(true);
    expect(await db.agent.count()).toBe(0);
  });

  it("a server that is down: refused and cut connections", async () => {
    link.refuse();
    try {
      const down = await failure(() => db.agent.count());
      expect(isDatabaseUnavailable(down.error), String(down.error)).toBe(true);
      const again = await failure(() => db.user.findMany());
      expect(isDatabaseUnavailable(again.error), String(again.error)).toBe(true);
    } finally {
      link.pass();
    }
    await expect.poll(() => db.agent.count().catch(() => -1), { timeout: 10_000 }).toBe(0);
  });

  it("a database closed to connections (ALLOW_CONNECTIONS false, as for maintenance): unavailable too", async () => {
    const outage = new DatabaseOutage(t.adminUrl);
    const closed = createPrismaClient(t.url, 1);
    await outage.begin();
    try {
      const refused = await failure(() => closed.agent.count());
      expect(String(refused.error)).toMatch(/not currently accepting connections/);
      expect(isDatabaseUnavailable(refused.error), String(refused.error)).toBe(true);
    } finally {
      await outage.end();
      await closed.$disconnect();
    }
  });

  it("a server that stops answering: the query times out instead of waiting forever", async () => {
    // A fresh pool, so that the hang meets both a connection being opened and one in use.
    const fresh = createPrismaClient(link.urlFor(t.url), 1, { statementTimeoutMs: 300, queryTimeoutMs: 1_500 });
    try {
      expect(await fresh.agent.count()).toBe(0);
      link.hang();
      const hung = await failure(() => fresh.agent.count());
      expect(isDatabaseUnavailable(hung.error), String(hung.error)).toBe(true);
      expect(hung.ms).toBeLessThan(12_000); // the query timeout, or the connection timeout (10 s) for a new one
    } finally {
      link.pass();
    }
    await expect.poll(() => fresh.agent.count().catch(() => -1), { timeout: 15_000, interval: 250 }).toBe(0);
    await fresh.$disconnect();
  });
});
