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
 * Event types are open-ended (any component records its own; the log keeps what earlier versions
 * wrote), so `type=` is never refused; but a type or kind that no event in the log has is said in
 * the answer, with the types the log does hold, instead of an empty page that reads as "nothing
 * happened" (a typo such as proxy.decisoin matched nothing, silently).
 */
describe("an audit type filter that no event in the log has is said, never silent", () => {
  let t: TestDatabase;
  let key: string;
  let dir: string;

  const call = <P,>(handler: RouteHandler<P>, query: string) =>
    handler(new Request(`http://127.0.0.1:3000${query}`, { headers: { authorization: `Bearer ${key}` } }), { params: Promise.resolve({} as P) });

  beforeAll(async () => {
    t = await createTestDatabase();
    process.env.BULKHEAD_DASHBOARD_DATABASE_URL = t.url;
    dir = mkdtempSync(path.join(tmpdir(), "bh-unmatched-types-"));
    const admin = await makeUser(t.db, "admin");
    key = (await createApiKey(t.db, admin.actor, { name: "types", role: "admin" })).key;
    for (const type of ["proxy.decision", "proxy.completed", "agent.created"]) await recordAuditEvent(t.db, { type, actor: { actorType: "system", actorId: "test" } });
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("GET /api/v1/audit names a misspelt type and the recorded types of its kind", async () => {
    const res = await call(listRoute.GET, "/api/v1/audit?type=proxy.decisoin");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { events: unknown[]; nothing: string | null; unmatchedTypes: string[] };
    expect(body.events).toEqual([]);
    expect(body.unmatchedTypes).toEqual(["no event in the log has type proxy.decisoin (recorded proxy types: proxy.completed, proxy.decision)"]);
    expect(body.nothing).toBe(body.unmatchedTypes[0]);
  });

  it("a kind the log has no event of lists the recorded kinds", async () => {
    const body = (await (await call(listRoute.GET, "/api/v1/audit?type=proxi.*")).json()) as { nothing: string | null };
    // The kinds the log holds by then: the seeded ones, the API key's creation, these reads.
    expect(body.nothing).toMatch(/^no event in the log is of kind proxi \(recorded kinds: agent, api_key, audit, proxy; a whole kind is written like proxy\.\*\)$/);
  });

  it("beside a type that matches, the one that does not is still named and the others' events are shown", async () => {
    const body = (await (await call(listRoute.GET, "/api/v1/audit?type=agent.created,agent.creatd")).json()) as { events: Array<{ type: string }>; nothing: string | null; unmatchedTypes: string[] };
    expect(body.events.map((e) => e.type)).toEqual(["agent.created"]);
    expect(body.nothing).toBeNull();
    expect(body.unmatchedTypes).toEqual(["no event in the log has type agent.creatd (recorded agent types: agent.created)"]);
  });

  it("types that match say nothing", async () => {
    const body = (await (await call(listRoute.GET, "/api/v1/audit?type=proxy.*,agent.created")).json()) as { events: unknown[]; unmatchedTypes: string[] };
    expect(body.events).toHaveLength(3);
    expect(body.unmatchedTypes).toEqual([]);
  });

  it("the export says it in a header, and bulkhead audit export on standard error", async () => {
    const res = await call(exportRoute.GET, "/api/v1/audit/export?format=jsonl&type=proxy.decisoin");
    expect(res.status).toBe(200);
    expect(res.headers.get("x-bulkhead-unmatched-types")).toBe("no event in the log has type proxy.decisoin (recorded proxy types: proxy.completed, proxy.decision)");
    await res.text();

    const run = await runCli(["audit", "export", "--format", "csv", "--output", path.join(dir, "typo.csv"), "--type", "proxy.decisoin"], { database: t });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("--type: no event in the log has type proxy.decisoin (recorded proxy types: proxy.completed, proxy.decision).");
    expect(run.stderr.at(-1)).toBe("No event matched the filters: no event in the log has any of the --type values given.");
  });

  it("a recorded type that is not ASCII cannot break the export's header", async () => {
    await recordAuditEvent(t.db, { type: "t\u4e2dst.seed", actor: { actorType: "system", actorId: "test" } });
    const res = await call(exportRoute.GET, "/api/v1/audit/export?format=jsonl&type=nosuch.*");
    expect(res.status).toBe(200);
    expect(res.headers.get("x-bulkhead-unmatched-types")).toMatch(/^no event in the log is of kind nosuch \(recorded kinds: .*t\?st.*\)$/);
    await res.text();
  });
});
