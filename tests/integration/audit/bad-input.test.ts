import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as listRoute from "@/app/api/v1/audit/route";
import * as eventRoute from "@/app/api/v1/audit/[seq]/route";
import * as exportRoute from "@/app/api/v1/audit/export/route";
import * as agentsRoute from "@/app/api/v1/agents/route";
import * as tasksRoute from "@/app/api/v1/tasks/route";
import * as apiKeysRoute from "@/app/api/v1/api-keys/route";
import * as denyRoute from "@/app/api/v1/approvals/[id]/deny/route";
import { createApiKey } from "@/lib/apikeys";
import { exportFailureReason } from "@/lib/audit/export";
import { auditFilterInput, auditPageInput } from "@/lib/audit/filter";
import { recordAuditEvent } from "@/lib/audit/record";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

/**
 * Input PostgreSQL cannot take (bigint overflow, year 0, NUL, lone surrogates) is a clear 400
 * naming what is wrong, never a 500 from the driver, and nothing is half-done.
 */
describe("bad input reaching PostgreSQL is a 400, never a 500", () => {
  let t: TestDatabase;
  let key: string;

  const call = <P,>(handler: RouteHandler<P>, path: string, init: { method?: string; body?: string } = {}, params = {} as P) =>
    callRoute(handler, path, { ...init, key, params });
  const text = async (res: Response) => JSON.stringify(await res.json());

  beforeAll(async () => {
    t = await routeDatabase();
    const admin = await makeUser(t.db, "admin");
    key = (await createApiKey(t.db, admin.actor, { name: "bad-input", role: "admin" })).key;
    await recordAuditEvent(t.db, { type: "test.seed", actor: { kind: "system", label: "test" } });
  });
  afterAll(() => t.drop());

  it.each([
    ["cursor above bigint", "cursor=9999999999999999999", /cursor must be an event's seq/],
    ["after above bigint", "after=9223372036854775808", /after must be an event's seq/],
    ["year 0 from", "from=0000-01-01", /from must be between 1970-01-01 and 9999-12-31/],
    ["year 0 to", "to=0000-06-01T00:00:00Z", /to must be between 1970-01-01 and 9999-12-31/],
    ["31 February", "from=2026-02-31", /from is not a real date/],
    ["hour 24", "to=2026-03-01T24:00", /to is not a real date/],
    ["NUL in search", "q=%00abc", /q must not contain NUL/],
    ["NUL in agent", "agent=%00abc", /must not contain NUL/],
    ["NUL in user", "user=a%00b@x.com", /must not contain NUL/],
  ])("the audit list refuses %s with 400", async (_what, query, message) => {
    const res = await call(listRoute.GET, `/api/v1/audit?${query}`);
    expect(res.status).toBe(400);
    expect(await text(res)).toMatch(message);
  });

  it("the parsers the dashboard's audit page uses refuse the same values (the page shows the sentences)", () => {
    for (const bad of [{ q: "\u0000abc" }, { agent: "\u0000abc" }, { user: "a\u0000b@x.com" }, { q: "ab\ud800c" }, { from: "0000-01-01" }, { to: "2026-02-31" }]) {
      const parsed = auditFilterInput.safeParse(bad);
      expect(parsed.success, JSON.stringify(bad)).toBe(false);
    }
    for (const bad of [{ cursor: "9999999999999999999" }, { after: "9223372036854775808" }]) expect(auditPageInput.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });

  it("accepts the largest seq and real dates", async () => {
    expect((await call(listRoute.GET, "/api/v1/audit?cursor=9223372036854775807&from=2024-02-29")).status).toBe(200);
  });

  it("answers an event seq beyond bigint with 404 (no such event can exist), not 500", async () => {
    const seq = "9999999999999999999";
    expect((await call(eventRoute.GET, `/api/v1/audit/${seq}`, {}, { seq })).status).toBe(404);
  });

  it("refuses an export with a date PostgreSQL cannot store before it starts: 400, and no export event", async () => {
    const started = () => t.db.auditEvent.count({ where: { type: { in: ["audit.export_started", "audit.exported"] } } });
    const before = await started();
    const res = await call(exportRoute.GET, "/api/v1/audit/export?format=csv&from=0000-01-01");
    expect(res.status).toBe(400);
    expect(await started()).toBe(before);
  });

  it("records a failed export's reason without the driver's text", () => {
    const driverError = Object.assign(new Error('date/time field value out of range: "0000-01-01" SELECT secret FROM x'), { code: "22008" });
    expect(exportFailureReason(driverError)).toBe("the database refused the query (SQLSTATE 22008)");
    expect(exportFailureReason(new Error("anything"))).toBe("the export stopped on an unexpected error");
  });

  it.each([
    ["agent description", agentsRoute.POST, "/api/v1/agents", () => JSON.stringify({ name: unique("a"), description: "a\u0000b" }), /description/],
    ["agent name (lone surrogate)", agentsRoute.POST, "/api/v1/agents", () => `{"name":"x\\ud800y"}`, /name/],
    ["task purpose", tasksRoute.POST, "/api/v1/tasks", () => JSON.stringify({ agentId: "00000000-0000-4000-8000-000000000000", purpose: "p\u0000", policyYaml: "rules: []\n" }), /purpose/],
    ["API key name", apiKeysRoute.POST, "/api/v1/api-keys", () => JSON.stringify({ name: "k\u0000", role: "auditor" }), /name/],
    ["nested key", agentsRoute.POST, "/api/v1/agents", () => `{"name":"ok","meta":{"k\\u0000":1}}`, /meta/],
  ])("refuses NUL or a lone surrogate in the %s with a 400 naming the field", async (_what, handler, path, body, field) => {
    const res = await call(handler as RouteHandler<object>, path, { method: "POST", body: body() });
    expect(res.status).toBe(400);
    const json = (await res.json()) as { issues: Array<{ path: string; message: string }> };
    expect(json.issues[0]!.path).toMatch(field);
    expect(json.issues[0]!.message).toMatch(/must not contain NUL characters .* or unpaired UTF-16 surrogates/);
  });

  it("answers a body nested deeper than the call stack with the route's own 400, and finds a NUL at the bottom of one", async () => {
    // JSON.parse takes nesting far deeper than a recursive walk could (a million levels is 2 MB).
    for (const depth of [20_000, 1_000_000]) {
      const res = await call(agentsRoute.POST as RouteHandler<object>, "/api/v1/agents", { method: "POST", body: `${"[".repeat(depth)}1${"]".repeat(depth)}` });
      expect(res.status, String(depth)).toBe(400);
    }
    const res = await call(agentsRoute.POST as RouteHandler<object>, "/api/v1/agents", { method: "POST", body: `{"name":"ok","meta":${"[".repeat(50_000)}"a\\u0000"${"]".repeat(50_000)}}` });
    expect(res.status).toBe(400);
    const body = await text(res);
    expect(body, body.slice(0, 400)).toContain("meta.0.0.0.0.0.0.0.... (50001 levels) must not contain NUL");
    expect(body.length).toBeLessThan(2000);
  });

  it("refuses a NUL in an approval's deny note with 400", async () => {
    const id = "00000000-0000-4000-8000-000000000000";
    const res = await call(denyRoute.POST as RouteHandler<{ id: string }>, `/api/v1/approvals/${id}/deny`, { method: "POST", body: JSON.stringify({ note: "a\u0000b" }) }, { id });
    expect(res.status).toBe(400);
    expect(await text(res)).toMatch(/note/);
  });

  it("records an audit event whose text PostgreSQL could not store, sanitised and noted", async () => {
    const seq = await recordAuditEvent(t.db, { type: "test.odd", actor: { kind: "system", label: "test" }, reason: "r\u0000", data: { note: "x\ud800y", ok: "fine" } });
    const row = await t.db.auditEvent.findUniqueOrThrow({ where: { id: seq } });
    expect(row.reason).toBe("r\ufffd");
    expect(row.data).toMatchObject({ note: "x\ufffdy", ok: "fine", sanitised: { count: 2 } });
  });
});
