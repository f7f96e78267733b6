import { beforeAll, describe, expect, it } from "vitest";
import { classify } from "@/lib/semantics/classify";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import { classifySql, loadSqlParser } from "@/lib/semantics/sql";
import { READ_ONLY_BUILTINS } from "@/lib/semantics/sql-builtins";
import type { Effect } from "@/lib/semantics/types";
import { canonical, json } from "./support";

beforeAll(async () => {
  await loadSqlParser();
});

const effectOf = (sql: string, readOnlyFunctions?: string[]): Effect => classifySql(sql, { readOnlyFunctions }).effect;

describe("SQL: a function Bulkhead does not know is at least a write", () => {
  // An agent with a read-only policy tries to run a side-effecting function someone created earlier.
  const attacks = [
    "SELECT purge_tenant(42)",
    "SELECT * FROM purge_tenant(42)",
    "SELECT id FROM t WHERE purge_tenant(id) IS NOT NULL",
    "SELECT count(*) FROM t GROUP BY purge_tenant(id)",
    "SELECT (SELECT purge_tenant(1))",
    "WITH x AS (SELECT purge_tenant(1)) SELECT * FROM x",
    "SELECT 1 UNION SELECT purge_tenant(2)",
    "VALUES (purge_tenant(1))",
    "SELECT lower(purge_tenant(1)::text)",
    "SELECT public.lower('x')", // not the built-in: pg_catalog's lower is not in schema public
    'SELECT "LOWER"(\'x\')', // quoted upper case names another function
    "SELECT app.safe_report(1)",
    "EXPLAIN ANALYZE SELECT purge_tenant(1)",
    "SELECT 1 OPERATOR(public.+) 2", // an operator is a function call
    "SELECT a ### b FROM t",
    // An operator before a sub-select, or in ORDER BY … USING, runs its function too.
    "SELECT 1 WHERE 1 ### ANY (SELECT 1)",
    "SELECT 1 WHERE 1 OPERATOR(public.=) ALL (SELECT 1)",
    "SELECT * FROM t ORDER BY x USING ###",
    "SELECT * FROM t ORDER BY x USING OPERATOR(public.<)",
    "SELECT array_agg(x ORDER BY x USING ###) FROM t",
    "SELECT setseed(0.5)",
    "SELECT pg_logical_slot_get_changes('slot', NULL, NULL)",
    "SELECT count(*) FILTER (WHERE purge_tenant(1) > 0) FROM t",
    "SELECT row_number() OVER (ORDER BY purge_tenant(id)) FROM t",
    "SELECT ARRAY[purge_tenant(1)]",
    "SELECT CASE WHEN true THEN purge_tenant(1) END",
    "SELECT COALESCE(NULL, purge_tenant(1))",
  ];
  for (const sql of attacks) {
    it(`${sql} is not a read`, () => {
      expect(effectOf(sql)).not.toBe("read");
    });
  }

  it("the unknown function is named in the action, with a note saying why", () => {
    const result = classifySql("SELECT app.purge_tenant(42)");
    expect(result.actions).toContainEqual(expect.objectContaining({ operation: "app.purge_tenant", effect: "write", note: expect.stringMatching(/not known to be read-only/) }));
  });

  it("functions that run SQL given as text cannot be analysed: irreversible", () => {
    expect(effectOf("SELECT ts_stat('DELETE FROM t RETURNING v')")).toBe("irreversible");
    expect(effectOf("SELECT cursor_to_xmlschema('c', true, true, '')")).toBe("irreversible");
  });

  it("a NUL in the SQL text is unparseable: the parser would stop reading at it", () => {
    const result = classifySql("SELECT 1\u0000; DROP TABLE users");
    expect(result.effect).toBe("irreversible");
    expect(result.actions[0]?.note).toMatch(/NUL/);
  });
});

describe("SQL: built-ins known to be read-only stay reads", () => {
  const reads = [
    "SELECT lower(name), upper(name), length(name), now(), count(*) FROM users WHERE id = 1",
    "SELECT pg_catalog.lower('A')",
    "SELECT date_trunc('day', created_at), extract(year FROM created_at) FROM t",
    "SELECT jsonb_build_object('a', 1), to_jsonb(t) FROM t",
    "SELECT coalesce(a, b), nullif(a, b), greatest(a, b) FROM t",
    "SELECT row_number() OVER (ORDER BY id), lag(id) OVER (ORDER BY id) FROM t",
    "SELECT substring(x from 2), trim(x), x AT TIME ZONE 'UTC', x SIMILAR TO 'a%' FROM t",
    "SELECT * FROM generate_series(1, 10)",
    "SELECT a FROM t WHERE a BETWEEN 1 AND 2 AND b NOT BETWEEN SYMMETRIC 3 AND 4 AND c LIKE 'x%' AND d IN (1, 2)",
    "SELECT pg_size_pretty(pg_total_relation_size('t')), has_table_privilege('t', 'select')",
    "SELECT data->>'name', data @> '{}'::jsonb FROM t",
    "SELECT currval('s'), pg_stat_get_numscans(1)",
  ];
  for (const sql of reads) {
    it(sql, () => {
      expect(classifySql(sql).actions.filter((a) => a.effect !== "read")).toEqual([]);
    });
  }

  it("the allowlist names nothing that is known to change state", () => {
    for (const name of ["nextval", "setval", "set_config", "pg_terminate_backend", "lo_unlink", "pg_notify", "setseed", "dblink_exec", "query_to_xml"]) {
      expect(READ_ONLY_BUILTINS.has(name)).toBe(false);
    }
  });

  it("a side-effecting function stays what it is in any schema or case", () => {
    expect(effectOf("SELECT pg_catalog.pg_terminate_backend(1)")).toBe("destructive");
    expect(effectOf('SELECT "PG_TERMINATE_BACKEND"(1)')).toBe("destructive");
  });
});

describe("a service declares its own read-only functions", () => {
  it("declared names are reads; others, qualified differently or spelled differently, are not", () => {
    const declared = ["safe_report", "reporting.monthly"];
    expect(effectOf("SELECT safe_report(1)", declared)).toBe("read");
    expect(effectOf("SELECT reporting.monthly(1)", declared)).toBe("read");
    expect(effectOf("SELECT other.safe_report(1)", declared)).toBe("write");
    expect(effectOf("SELECT monthly(1)", declared)).toBe("write");
    expect(effectOf('SELECT "Safe_Report"(1)', declared)).toBe("write");
    // A declaration cannot make a known side effect harmless.
    expect(effectOf("SELECT nextval('s')", ["nextval"])).toBe("write");
  });

  it("through the descriptor, end to end", () => {
    const registry = registryWith([
      { id: "reports-db", hosts: ["sql.reports.test"], protocol: "sql-http", sql: { readOnlyFunctions: ["safe_report"] } },
    ]);
    const run = (sql: string) => {
      const result = classify(canonical("POST", "https://sql.reports.test/", { body: json({ query: sql }) }), registry, createInventory());
      if (!result.ok) throw new Error(result.reason);
      return result.effect;
    };
    expect(run("SELECT safe_report(1)")).toBe("read");
    expect(run("SELECT purge_tenant(1)")).toBe("write");
  });

  it("the descriptor refuses names that are not function names", () => {
    expect(() => registryWith([{ id: "x", hosts: ["x.test"], protocol: "sql-http", sql: { readOnlyFunctions: ["a b"] } }])).toThrow(/function name/);
  });
});
