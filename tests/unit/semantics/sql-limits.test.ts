/**
 * The work one SQL-over-HTTP request may cause is bounded (SQL_LIMITS), over the whole request,
 * batch included: beyond it the request is refused with a clear code, never analysed for seconds
 * on the worker's event loop (1 MB of `select 1;` took 1.3 s) nor waved through.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { classifySql, loadSqlParser, SQL_LIMITS } from "@/lib/semantics/sql";
import { classifyRequest, json } from "./support";

const SQL = "https://sql.example.com/sql";

beforeAll(async () => {
  await loadSqlParser();
});

const outcome = (body: unknown): string => {
  const r = classifyRequest("POST", SQL, { body: json(body) });
  return r.ok ? `${r.effect} ${r.actions.length}` : r.code;
};
const calls = (n: number, name: (i: number) => string) => `select ${Array.from({ length: n }, (_, i) => `${name(i)}(1)`).join(", ")}`;

describe("SQL work per request is bounded", () => {
  it("1 MB of `select 1;` is refused before it is parsed", () => {
    expect(outcome({ query: "select 1;".repeat(110_000) })).toBe("sql_too_large");
  });
  it("more statements than the limit are refused, even when the text is small", () => {
    expect(outcome({ query: "select 1;".repeat(SQL_LIMITS.maxStatements + 1) })).toBe("sql_too_many_statements");
    expect(outcome({ query: ";select 1".repeat(SQL_LIMITS.maxStatements + 1) })).toBe("sql_too_many_statements");
  });
  it("a batch shares one budget: many small texts add up", () => {
    const perItem = Math.ceil((SQL_LIMITS.maxStatements + 1) / 50);
    expect(outcome(Array.from({ length: 50 }, () => ({ query: "select 1;".repeat(perItem) })))).toBe("sql_too_many_statements");
    const chars = Math.ceil(SQL_LIMITS.maxChars / 50 / 10) + 1;
    expect(outcome(Array.from({ length: 50 }, () => ({ query: `select '${"x".repeat(chars * 10)}'` })))).toBe("sql_too_large");
  });
  it("a parse tree larger than the limit is refused (100k-node function lists, long IN lists)", () => {
    expect(outcome({ query: calls(10_000, () => "f") })).toBe("sql_too_complex");
    expect(outcome({ query: `select 1 where 1 in (${"1,".repeat(20_000)}1)` })).toBe("sql_too_complex");
  });
  it("more actions than the limit are refused (distinct function calls)", () => {
    expect(outcome({ query: calls(SQL_LIMITS.maxActions + 1, (i) => `f${i}`) })).toBe("sql_too_complex");
  });
  it("ordinary requests stay well inside the limits", () => {
    expect(outcome({ query: "select 1;".repeat(SQL_LIMITS.maxStatements) })).toBe(`read ${SQL_LIMITS.maxStatements}`);
    const rows = Array.from({ length: 500 }, (_, i) => `(${i}, 'name ${i}', now(), true)`).join(", ");
    expect(outcome({ query: `insert into t (id, name, at, ok) values ${rows}` })).toMatch(/^write /);
  });
  it("standalone classification beyond the limits is unparseable, hence irreversible", () => {
    const r = classifySql("select 1;".repeat(SQL_LIMITS.maxStatements + 1));
    expect([r.effect, r.actions[0]?.operation]).toEqual(["irreversible", "UNPARSEABLE"]);
  });
});
