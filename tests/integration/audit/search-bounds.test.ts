import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { listAuditEvents, runningSearches } from "@/lib/audit/query";
import { AppError } from "@/lib/errors/app-error";
import { bulkProxyDecisions } from "../../support/audit-events";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { makeFleet } from "./fleet";

/**
 * What one reader's searches of the audit log can cost. Free text that gives pg_trgm no trigram
 * (`!!!`, `---`, `...`), or whose every trigram is common, cannot be narrowed by the indexes:
 * PostgreSQL reads the whole log, in parallel workers, for every page (600 ms at 200,000 events,
 * against 12 ms for indexed text), until the connection's 20 s timeout on a large log. Any role
 * with read access, an auditor or a read-only API key, could send such searches at once without
 * limit and hold every connection of the dashboard's pool of ten: approvals could not be decided
 * meanwhile. Now each page's query has its own time limit (a 400 that says how to narrow the
 * search), and at most two run at once per person or key (four per process); more is a 429.
 */
describe("audit search: bounded in time and in how many run at once", () => {
  let t: TestDatabase;
  let pool: pg.Pool;
  let auditor: Actor;
  let other: Actor;

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new pg.Pool({ connectionString: t.adminUrl, max: 2 });
    const owner = await makeUser(t.db, "admin");
    auditor = (await makeUser(t.db, "auditor")).actor;
    other = (await makeUser(t.db, "auditor")).actor;
    await bulkProxyDecisions(pool, await makeFleet(t.db, owner.user.id), 100_000);
    await pool.query("ANALYZE audit_events");
  }, 300_000);
  afterAll(async () => {
    await pool?.end();
    await t?.drop();
  });

  it("one reader's searches run two at a time; the rest are refused at once with 429, and another reader is not", async () => {
    const burst = Array.from({ length: 6 }, () => listAuditEvents(t.db, auditor, { q: "!!!" }, "api"));
    const neighbour = listAuditEvents(t.db, other, { q: "railway", limit: 5 }, "api");
    const results = await Promise.allSettled(burst);
    const refused = results.filter((r) => r.status === "rejected" && r.reason instanceof AppError && r.reason.code === "RATE_LIMITED");
    expect(refused).toHaveLength(4); // 6 sent, SEARCHES_PER_ACTOR (2) run
    const reason = (refused[0] as PromiseRejectedResult).reason as AppError;
    expect(reason.statusCode).toBe(429);
    expect(reason.details).toMatchObject({ retryAfterSeconds: 1, limit: "actor" });
    expect(reason.message).toMatch(/2 searches of yours are already running/);
    expect((await neighbour).events).toHaveLength(5);
    // Slots are given back whatever the outcome.
    expect(runningSearches()).toBe(0);
    expect((await listAuditEvents(t.db, auditor, { q: "railway", limit: 1 }, "api")).events).toHaveLength(1);
  }, 60_000);

  it("a search the indexes cannot narrow is stopped at its time limit with a sentence; an indexed one answers", async () => {
    // A limit no scan of 100,000 rows meets (150 ms was met on a quiet machine: the search then
    // answered, and the test read that as a failure to stop it).
    for (const q of ["!!!", "---", "..."]) {
      const error = await listAuditEvents(t.db, auditor, { q }, "api", { statementTimeoutMs: 5 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error, q).toBeInstanceOf(AppError);
      expect((error as AppError).statusCode).toBe(400);
      expect((error as AppError).details).toMatchObject({ reason: "search_too_slow", timeoutMs: 5 });
      expect((error as AppError).message).toMatch(/stopped after 0.005 s.*time range/);
    }
    expect((await listAuditEvents(t.db, auditor, { q: "railway", limit: 10 }, "api", { statementTimeoutMs: 150 })).events).toHaveLength(10);
    expect(runningSearches()).toBe(0);
  }, 60_000);
});
