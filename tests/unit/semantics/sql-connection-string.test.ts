import { beforeAll, describe, expect, it } from "vitest";
import { classify } from "@/lib/semantics/classify";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import { loadSqlParser } from "@/lib/semantics/sql";
import { canonicalizeRequest } from "@/lib/semantics/canonical";
import { canonical, json, registry, inventory } from "./support";

/**
 * Neon's SQL-over-HTTP endpoint runs a statement in the database (and on the endpoint, which picks
 * the branch) named by the `Neon-Connection-String` header. An agent allowed on staging names the
 * production database there while the body, or the descriptor, says staging: it must be judged
 * for production, or refused, never judged for staging.
 */
const NEON = "https://api.neon.example/sql";
const neonRegistry = registryWith([
  // As an operator would describe Neon: the statement in `query`, transactions in `queries`, and
  // the database the service is meant for fixed (what a request that names none runs in).
  { id: "neon", hosts: ["api.neon.example"], protocol: "sql-http", sql: { paths: ["/sql"], queryField: "query", batchField: "queries", database: "app_staging" } },
]);
const neonInventory = createInventory([
  { environment: "staging", service: "neon", resources: ["app_staging", "ep-dev-1.neon.example"] },
  { environment: "production", service: "neon", resources: ["payroll", "ep-main-1.neon.example"] },
]);

beforeAll(async () => {
  await loadSqlParser();
});

function judge(body: unknown, connection?: string | string[], options: { registry?: typeof registry; inventory?: typeof inventory; url?: string } = {}) {
  const headers: Record<string, string | string[]> = { "content-type": "application/json" };
  if (connection !== undefined) headers["neon-connection-string"] = connection;
  const raw = canonicalizeRequest({ method: "POST", url: options.url ?? NEON, headers, body: json(body) });
  if (!raw.ok) return raw.code;
  const result = classify(raw.request, options.registry ?? neonRegistry, options.inventory ?? neonInventory);
  return result.ok ? result.actions.map((a) => [a.operation, a.environment, a.detail?.["database"]]) : result.code;
}

describe("Neon's connection-string header names the database", () => {
  it("the control: without the header, the descriptor's database (staging)", () => {
    expect(judge({ query: "DELETE FROM orders" })).toEqual([["DELETE", "staging", "app_staging"]]);
  });

  it("the header's database is the one judged: payroll is production, whatever the descriptor says", () => {
    expect(judge({ query: "DELETE FROM orders" }, "postgresql://agent:pw@ep-dev-1.neon.example/payroll?sslmode=require")).toEqual([["DELETE", "production", "payroll"]]);
    expect(judge({ queries: [{ query: "SELECT 1" }, { query: "DELETE FROM orders" }] }, "postgres://agent@ep-dev-1.neon.example/payroll")).toEqual([
      ["SELECT", "production", "payroll"],
      ["DELETE", "production", "payroll"],
    ]);
    // Percent-encoded, as the server decodes it.
    expect(judge({ query: "SELECT 1" }, "postgres://agent@ep-dev-1.neon.example/pay%72oll")).toEqual([["SELECT", "production", "payroll"]]);
  });

  it("the endpoint counts too: the staging database name on the production branch is not staging", () => {
    expect(judge({ query: "DELETE FROM orders" }, "postgres://agent@ep-main-1.neon.example/app_staging")).toEqual([["DELETE", "production", "app_staging"]]);
    expect(judge({ query: "DELETE FROM orders" }, "postgres://agent@ep-dev-1.neon.example/app_staging")).toEqual([["DELETE", "staging", "app_staging"]]);
  });

  it("records the user and the endpoint for people and the audit", () => {
    const raw = canonicalizeRequest({ method: "POST", url: NEON, headers: { "content-type": "application/json", "neon-connection-string": "postgres://ro%40team@EP-Dev-1.neon.example/app_staging" }, body: json({ query: "SELECT 1" }) });
    const result = raw.ok ? classify(raw.request, neonRegistry, neonInventory) : raw;
    expect(result.ok && result.actions[0]?.detail).toMatchObject({ database: "app_staging", databaseUser: "ro@team", databaseHost: "ep-dev-1.neon.example" });
  });

  it("a body that names another database than the header is refused (the example pg-http service reads `database`)", () => {
    const pg = (body: unknown, connection: string) => judge(body, connection, { registry, inventory, url: "https://sql.example.com/sql" });
    expect(pg({ query: "DELETE FROM orders", database: "app_staging" }, "postgres://agent@sql.example.com/payroll")).toBe("sql_ambiguous_request");
    expect(pg([{ query: "SELECT 1", database: "app_staging" }], "postgres://agent@sql.example.com/payroll")).toBe("sql_ambiguous_request");
    // The same database in both places is judged as usual.
    expect(pg({ query: "DELETE FROM orders", database: "payroll" }, "postgres://agent@sql.example.com/payroll")).toEqual([["DELETE", "production", "payroll"]]);
    expect(pg({ query: "DELETE FROM orders" }, "postgres://agent@sql.example.com/payroll")).toEqual([["DELETE", "production", "payroll"]]);
  });

  it("a header that cannot be read one way only is refused, not guessed", () => {
    for (const bad of [
      "",
      "not a url",
      "mysql://agent@ep-dev-1.neon.example/app_staging",
      "https://agent@ep-dev-1.neon.example/app_staging",
      "postgres://ep-dev-1.neon.example/app_staging",
      "postgres://:pw@ep-dev-1.neon.example/app_staging",
      "postgres://agent@ep-dev-1.neon.example",
      "postgres://agent@ep-dev-1.neon.example/",
      "postgres://agent@ep-dev-1.neon.example/app_staging/payroll",
      "postgres://agent@ep-dev-1.neon.example/%ff",
      "postgres://agent@/app_staging",
      "postgres://agent@ep-dev-1.neon.example/app_staging?dbname=payroll",
      "postgres://agent@ep-dev-1.neon.example/app_staging?sslmode=require&DBNAME=payroll",
      "postgres://agent@ep-dev-1.neon.example/app_staging?host=ep-main-1.neon.example",
      "postgres://agent@ep-dev-1.neon.example/app_staging?user=admin",
    ]) {
      expect(judge({ query: "SELECT 1" }, bad), JSON.stringify(bad)).toBe("sql_invalid_connection_string");
    }
  });

  it("the header sent twice is refused before anything reads it", () => {
    expect(judge({ query: "SELECT 1" }, ["postgres://agent@ep-dev-1.neon.example/app_staging", "postgres://agent@ep-dev-1.neon.example/payroll"])).toBe("duplicate_header");
  });

  it("a text body is judged for the header's database too", () => {
    const text = registryWith([{ id: "neon", hosts: ["api.neon.example"], protocol: "sql-http", sql: { paths: ["/sql"], bodyFormat: "text", database: "app_staging" } }]);
    const req = canonical("POST", NEON, { body: "DELETE FROM orders", contentType: "text/plain", headers: { "neon-connection-string": "postgres://agent@ep-dev-1.neon.example/payroll" } });
    const result = classify(req, text, neonInventory);
    expect(result.ok && result.actions.map((a) => a.environment)).toEqual(["production"]);
  });
});
