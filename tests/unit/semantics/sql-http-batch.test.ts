import { beforeAll, describe, expect, it } from "vitest";
import { sqlConfigSchema } from "@/lib/semantics/descriptors/schema";
import { loadSqlParser } from "@/lib/semantics/sql";
import { classifySqlHttp } from "@/lib/semantics/sql-http";
import { canonical, classifyRequest, json } from "./support";

const SQL = "https://sql.example.com/sql";

beforeAll(async () => {
  await loadSqlParser();
});

const judged = (body: unknown) => {
  const result = classifyRequest("POST", SQL, { body: json(body) });
  return result.ok ? result.actions.map((a) => [a.operation, a.effect, a.resource]) : result.code;
};

/**
 * A body may carry statements under a key the service's descriptor does not read (Neon takes
 * `{"queries": [{"query": …}]}` as a transaction beside `{"query": …}`): judged by `query` alone,
 * a DROP in `queries` went through as a SELECT.
 */
describe("SQL over HTTP: statements under a key the descriptor does not read are refused", () => {
  it("the control: query alone is judged", () => {
    expect(judged({ query: "SELECT * FROM orders" })).toEqual([["SELECT", "read", "orders"]]);
  });

  for (const key of ["queries", "statements", "batch", "sql", "q", "stmt", "statement", "command", "commands", "Queries", " SQL ", "QUERIES", "Q"]) {
    it(`{"query": "SELECT 1", ${JSON.stringify(key)}: [DROP]} is refused`, () => {
      expect(judged({ query: "SELECT 1", [key]: [{ query: "DROP TABLE users" }] })).toBe("sql_ambiguous_request");
      expect(judged({ query: "SELECT 1", [key]: "DROP TABLE users" })).toBe("sql_ambiguous_request");
    });
  }

  it("in a batch array too", () => {
    expect(judged([{ query: "SELECT 1" }, { query: "SELECT 2", queries: [{ query: "DROP TABLE users" }] }])).toBe("sql_ambiguous_request");
  });

  it("a statement key in the URL or in the form reading of a body labelled a form is refused", () => {
    for (const key of ["queries", "statements", "batch", "stmt", "commands", "q", "Q", "command", "db", "dbname", "q[]"]) {
      const inUrl = classifyRequest("POST", `${SQL}?${key}=x`, { body: json({ query: "SELECT 1" }) });
      expect(inUrl.ok ? "ok" : inUrl.code, key).toBe("sql_ambiguous_request");
      const asForm = classifyRequest("POST", SQL, { body: `{"query":"SELECT 1","x":"&${key}=DROP TABLE users&"}`, contentType: "application/x-www-form-urlencoded" });
      expect(asForm.ok ? "ok" : asForm.code, key).toBe("sql_ambiguous_request");
    }
  });

  it("other keys are not refused (the control)", () => {
    expect(judged({ query: "SELECT 1", params: [], arrayMode: false, database: "app_staging" })).not.toBe("sql_ambiguous_request");
  });
});

describe("SQL over HTTP: a descriptor's batchField is read, every statement judged", () => {
  const config = sqlConfigSchema.parse({ paths: ["/sql"], queryField: "query", batchField: "queries" });
  const run = (body: unknown) => {
    const result = classifySqlHttp(canonical("POST", "https://neon.example.com/sql", { body: json(body) }), config);
    return result.ok ? result.drafts.map((d) => [d.operation, d.effect, d.resource]) : result.code;
  };

  it("every statement of the batch", () => {
    expect(run({ queries: [{ query: "SELECT * FROM a", params: [] }, { query: "DROP TABLE users" }] })).toEqual([
      ["SELECT", "read", "a"],
      ["DROP TABLE", "irreversible", "users"],
    ]);
  });

  it("a transaction that switches client_encoding to SJIS before a statement whose bytes read otherwise there is irreversible", () => {
    // In SJIS, `Á` (C3 81) and the backslash (5C) after it are two characters: the quote closes the
    // string, and the statement deletes every row of t on the server, while it is a SELECT here.
    const hidden = "WITH x AS (SELECT E'\u00c1\\' ) , d AS (DELETE FROM t RETURNING 1) SELECT 1 FROM d --' ) SELECT 1";
    expect(run({ queries: [{ query: hidden }] })).toEqual([["SELECT", "read", "-"]]);
    const drafts = run({ queries: [{ query: "SET client_encoding TO 'SJIS'" }, { query: hidden }] });
    expect(Array.isArray(drafts) && drafts[0]).toEqual(["SET client_encoding", "irreversible", "-"]);
  });

  it("query and queries both present: both are judged", () => {
    const drafts = run({ query: "SELECT 1", queries: [{ query: "DROP TABLE users" }] });
    expect(Array.isArray(drafts) && drafts.some((d) => d[1] === "irreversible" && d[2] === "users")).toBe(true);
  });

  it("a batch that is not a list of statement objects is refused", () => {
    expect(run({ queries: "DROP TABLE users" })).toBe("sql_invalid_request");
    expect(run({ queries: [] })).toBe("sql_invalid_request");
    expect(run({ queries: [{ sql: "DROP TABLE users" }] })).toBe("sql_missing_query");
    expect(run({ queries: [{ query: "SELECT 1", sql: "DROP TABLE users" }] })).toBe("sql_ambiguous_request");
    expect(run({ queries: [{ query: "SELECT 1", statements: ["DROP TABLE users"] }] })).toBe("sql_ambiguous_request");
    expect(run({ queries: Array.from({ length: 51 }, () => ({ query: "SELECT 1" })) })).toBe("sql_invalid_request");
  });

  it("a spelling of the batch field in another case is refused", () => {
    expect(run({ query: "SELECT 1", Queries: [{ query: "DROP TABLE users" }] })).toMatch(/sql_ambiguous_request|json_key_variant/);
  });

  it("the batch field in the URL is refused", () => {
    const result = classifySqlHttp(canonical("POST", "https://neon.example.com/sql?queries=x", { body: json({ query: "SELECT 1" }) }), config);
    expect(result.ok ? "ok" : result.code).toBe("sql_ambiguous_request");
  });
});
