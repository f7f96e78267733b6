import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as listRoute from "@/app/api/v1/audit/route";
import * as exportRoute from "@/app/api/v1/audit/export/route";
import { createApiKey } from "@/lib/apikeys";
import { recordAuditEvent } from "@/lib/audit/record";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

/**
 * Outcomes are open-ended like types (each component records its own words), so `outcome=` is
 * never refused; an outcome no event in the log has (`denied` where the proxy records `deny`) is
 * said in the answer instead of an empty page that reads as "nothing was denied".
 */
describe("an audit outcome filter that no event in the log has is said, never silent", () => {
  let t: TestDatabase;
  let key: string;
  let dir: string;

  const call = <P,>(handler: RouteHandler<P>, query: string) =>
    handler(new Request(`http://127.0.0.1:3000${query}`, { headers: { authorization: `Bearer ${key}` } }), { params: Promise.resolve({} as P) });
  const sentence = (o: string) => `no event in the log has outcome ${o} (outcomes are words such as allow, deny, hold, approve, reject, cancel, forwarded, failed)`;

  beforeAll(async () => {
    t = await createTestDatabase();
    process.env.BULKHEAD_DASHBOARD_DATABASE_URL = t.url;
    dir = mkdtempSync(path.join(tmpdir(), "bh-unmatched-outcomes-"));
    const admin = await makeUser(t.db, "admin");
    key = (await createApiKey(t.db, admin.actor, { name: "outcomes", role: "admin" })).key;
    for (const outcome of ["deny", "allow", "deny"]) await recordAuditEvent(t.db, { type: "proxy.decision", outcome, actor: { actorType: "system", actorId: "test" } });
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("GET /api/v1/audit names an outcome no event has, and matches nothing", async () => {
    const res = await call(listRoute.GET, "/api/v1/audit?outcome=denied");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { events: unknown[]; nothing: string | null; unmatchedOutcomes: string[] };
    expect(body.events).toEqual([]);
    expect(body.unmatchedOutcomes).toEqual([sentence("denied")]);
    expect(body.nothing).toBe(sentence("denied"));
  });

  it("beside an outcome that matches, the one that does not is named and the other's events are shown", async () => {
    const body = (await (await call(listRoute.GET, "/api/v1/audit?outcome=deny,bogus")).json()) as { events: Array<{ outcome: string }>; nothing: string | null; unmatchedOutcomes: string[] };
    expect(body.events.map((e) => e.outcome)).toEqual(["deny", "deny"]);
    expect(body.nothing).toBeNull();
    expect(body.unmatchedOutcomes).toEqual([sentence("bogus")]);
  });

  it("outcomes that match say nothing", async () => {
    const body = (await (await call(listRoute.GET, "/api/v1/audit?type=proxy.decision&outcome=allow,deny")).json()) as { events: unknown[]; unmatchedOutcomes: string[] };
    expect(body.events).toHaveLength(3);
    expect(body.unmatchedOutcomes).toEqual([]);
  });

  it("an outcome recorded after the first search is found by the next one", async () => {
    expect(((await (await call(listRoute.GET, "/api/v1/audit?outcome=hold")).json()) as { unmatchedOutcomes: string[] }).unmatchedOutcomes).toEqual([sentence("hold")]);
    await recordAuditEvent(t.db, { type: "proxy.decision", outcome: "hold", actor: { actorType: "system", actorId: "test" } });
    const body = (await (await call(listRoute.GET, "/api/v1/audit?outcome=hold")).json()) as { events: unknown[]; unmatchedOutcomes: string[]; nothing: string | null };
    expect(body.events).toHaveLength(1);
    expect(body.unmatchedOutcomes).toEqual([]);
    expect(body.nothing).toBeNull();
  });

  it("the export says it in a header, and bulkhead audit export on standard error", async () => {
    const res = await call(exportRoute.GET, "/api/v1/audit/export?format=jsonl&outcome=denied");
    expect(res.status).toBe(200);
    expect(res.headers.get("x-bulkhead-unmatched-outcomes")).toBe(sentence("denied"));
    await res.text();

    const run = await runCli(["audit", "export", "--format", "csv", "--output", path.join(dir, "typo.csv"), "--outcome", "denied"], { database: t });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`--outcome: ${sentence("denied")}.`);
    expect(run.stderr.at(-1)).toBe("No event matched the filters: no event in the log has any of the --outcome values given.");
  });
});
