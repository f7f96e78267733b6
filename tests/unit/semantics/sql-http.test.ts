import { beforeAll, describe, expect, it } from "vitest";
import { loadSqlParser } from "@/lib/semantics/sql";
import { classifyRequest, json } from "./support";

const SQL = "https://sql.example.com/sql";

beforeAll(async () => {
  await loadSqlParser();
});

describe("SQL over HTTP", () => {
  it("SQL from the configured JSON field, database from its field", () => {
    const result = classifyRequest("POST", SQL, { body: json({ query: "DELETE FROM orders", database: "app_staging" }) });
    if (!result.ok) throw new Error(result.reason);
    expect(result.service).toBe("pg-http");
    expect(result.actions.map((a) => [a.operation, a.effect, a.resource, a.environment])).toEqual([["DELETE", "destructive", "orders", "staging"]]);
    expect(result.actions[0]?.detail?.["database"]).toBe("app_staging");
  });
  it("a qualified table is looked up by its own name too: public.payroll is the production payroll", () => {
    for (const query of ["SELECT * FROM payroll", "SELECT * FROM public.payroll", "DELETE FROM app_staging.public.payroll WHERE id = 1"]) {
      const result = classifyRequest("POST", SQL, { body: json({ query, database: "app_staging" }) });
      expect(result.ok && result.actions.map((a) => a.environment), query).toEqual(["production"]);
    }
  });
  it("an unknown database is production", () => {
    const result = classifyRequest("POST", SQL, { body: json({ query: "SELECT * FROM orders", database: "app" }) });
    expect(result.ok && result.actions[0]?.environment).toBe("production");
  });
  it("several statements: every action kept, effect is the max", () => {
    const result = classifyRequest("POST", SQL, { body: json({ query: "SELECT 1; DROP TABLE x" }) });
    expect(result.ok && result.effect).toBe("irreversible");
    expect(result.ok && result.actions.length).toBe(2);
  });
  it("unparseable SQL is irreversible with the reason in the detail", () => {
    const result = classifyRequest("POST", SQL, { body: json({ query: "DROPP TABLE x" }) });
    expect(result.ok && result.effect).toBe("irreversible");
    expect(result.ok && String(result.actions[0]?.detail?.["note"])).toMatch(/^unparseable SQL/);
  });
  it("a batch of requests is classified element by element", () => {
    const result = classifyRequest("POST", SQL, { body: json([{ query: "SELECT 1" }, { query: "TRUNCATE t" }]) });
    expect(result.ok && result.actions.map((a) => a.effect)).toEqual(["read", "destructive"]);
  });
  it("a missing query field is rejected", () => {
    const result = classifyRequest("POST", SQL, { body: json({ sql: "SELECT 1" }) });
    expect(result.ok ? null : result.code).toBe("sql_missing_query");
  });
  it("a non-string database field is rejected", () => {
    const result = classifyRequest("POST", SQL, { body: json({ query: "SELECT 1", database: ["a", "b"] }) });
    expect(result.ok ? null : result.code).toBe("sql_invalid_request");
  });
  it("an empty body is rejected", () => {
    const result = classifyRequest("POST", SQL);
    expect(result.ok ? null : result.code).toBe("sql_missing_query");
  });
});

describe("SQL over HTTP: the statement or the database in the URL too", () => {
  // A server that reads `?query=` (ClickHouse) or merges URL and body parameters would run the
  // URL's DROP while the body's SELECT was judged; `?database=` would switch the database the
  // environment was looked up by.
  const refused: Array<[string, string]> = [
    ["?query=DROP%20TABLE%20payroll", json({ query: "SELECT 1" })],
    ["?QUERY=DROP%20TABLE%20payroll", json({ query: "SELECT 1" })],
    ["?%71uery=DROP%20TABLE%20payroll", json({ query: "SELECT 1" })],
    ["?a=1;query=DROP%20TABLE%20payroll", json({ query: "SELECT 1" })],
    ["?query[]=DROP%20TABLE%20payroll", json({ query: "SELECT 1" })],
    ["?sql=DROP%20TABLE%20payroll", json({ query: "SELECT 1" })],
    ["?database=payroll", json({ query: "DELETE FROM orders WHERE id = 1", database: "app_staging" })],
    ["?+Database+=payroll", json({ query: "DELETE FROM orders WHERE id = 1", database: "app_staging" })],
  ];
  for (const [query, body] of refused) {
    it(`refuses ${query}`, () => {
      const result = classifyRequest("POST", `${SQL}${query}`, { body });
      expect(result.ok ? result.actions.map((a) => [a.operation, a.environment]) : result.code).toBe("sql_ambiguous_request");
    });
  }
  it("a GET carrying the statement in the URL is refused the same way", () => {
    const result = classifyRequest("GET", `${SQL}?query=DROP%20TABLE%20payroll`);
    expect(result.ok ? null : result.code).toBe("sql_ambiguous_request");
  });
  it("other URL parameters are left alone", () => {
    const result = classifyRequest("POST", `${SQL}?timeout=5&queryId=7`, { body: json({ query: "SELECT 1" }) });
    expect(result.ok && result.actions.map((a) => a.effect)).toEqual(["read"]);
  });
});

describe("SQL over HTTP: a JSON body labelled as a form", () => {
  // Servers that parse by Content-Type read `&query=DROP TABLE payroll&` inside a JSON string as
  // the form field query; Bulkhead judged the JSON's SELECT.
  const FORM = "application/x-www-form-urlencoded";
  it("is refused when its form reading names the statement or the database", () => {
    for (const body of ['{"query":"SELECT 1","x":"&query=DROP TABLE payroll&"}', '{"query":"SELECT 1","x":"&database=payroll&"}', '{"query":"SELECT 1","x":";SQL=DROP TABLE payroll;"}']) {
      const result = classifyRequest("POST", SQL, { body, contentType: FORM });
      expect(result.ok ? result.actions.map((a) => a.operation) : result.code, body).toBe("sql_ambiguous_request");
    }
  });
  it("is read as JSON when its form reading names neither (the control)", () => {
    const result = classifyRequest("POST", SQL, { body: json({ query: "SELECT 1 FROM orders" }), contentType: FORM });
    expect(result.ok && result.actions.map((a) => [a.operation, a.effect])).toEqual([["SELECT", "read"]]);
  });
});
