import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { canonicalizeRequest } from "@/lib/semantics/canonical";
import { classify } from "@/lib/semantics/classify";
import { classifySql, loadSqlParser } from "@/lib/semantics/sql";
import { effectRank, type Classification } from "@/lib/semantics/types";
import { classifyRequest, inventory, json, RAILWAY, registry } from "./support";

beforeAll(async () => {
  await loadSqlParser();
});

const RUNS = { numRuns: 300 };
const ENDPOINTS = [
  RAILWAY,
  "https://api.github.com/repos/acme/app/git/refs/heads/main",
  "https://api.github.com/graphql",
  "https://api.shop.example.com/graphql",
  "https://sql.example.com/sql",
  "https://mcp.example.com/mcp",
  "https://api.storage.example.com/volumes/v1",
  "https://unknown.example.net/x",
];
const CONTENT_TYPES = [undefined, "application/json", "application/graphql", "application/x-www-form-urlencoded", "text/plain", "application/json; charset=latin1", "multipart/form-data"];
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PURGE"];

function isWellFormed(result: Classification): boolean {
  if (!result.ok) return typeof result.code === "string" && typeof result.reason === "string";
  return result.actions.length > 0 && result.actions.every((a) => effectRank(a.effect) <= effectRank(result.effect));
}

describe("classifiers never throw", () => {
  it("canonicalizeRequest on arbitrary input", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.oneof(fc.string({ unit: "binary" }), fc.webUrl({ withQueryParameters: true, withFragments: true })),
        fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.array(fc.string()))),
        fc.option(fc.uint8Array()),
        (method, url, headers, body) => {
          const result = canonicalizeRequest({ method, url, headers, body });
          expect(typeof result.ok).toBe("boolean");
        },
      ),
      RUNS,
    );
  });

  it("canonical paths never contain dot segments, '//' or encoded slashes", () => {
    const segment = fc.oneof(fc.constantFrom(".", "..", "%2e", "%2E%2e", "%2f", "%5C", "", "a", "b;c", "%41", "%zz", "~"), fc.string());
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), (segments) => {
        const result = canonicalizeRequest({ method: "GET", url: `https://a.example.com/${segments.join("/")}` });
        if (!result.ok) return;
        const parts = result.request.path.split("/").slice(1);
        expect(parts.some((p) => p === "." || p === "..")).toBe(false);
        expect(result.request.path.slice(0, -1).includes("//")).toBe(false);
        expect(/%2f|%5c/i.test(result.request.path)).toBe(false);
      }),
      RUNS,
    );
  });

  it("classify on arbitrary bodies for every protocol", () => {
    const body = fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v)), fc.uint8Array());
    fc.assert(
      fc.property(fc.constantFrom(...ENDPOINTS), fc.constantFrom(...METHODS), fc.constantFrom(...CONTENT_TYPES), body, (url, method, type, payload) => {
        const headers: Record<string, string> = type ? { "content-type": type } : {};
        const c = canonicalizeRequest({ method, url, headers, body: payload });
        if (!c.ok) return;
        expect(isWellFormed(classify(c.request, registry, inventory))).toBe(true);
      }),
      RUNS,
    );
  });

  it("classify on GraphQL-shaped JSON with arbitrary fields", () => {
    const payload = fc.record({
      query: fc.oneof(fc.string(), fc.constantFrom("mutation { a b }", "{ me { id } }", "query A { a } query B { b }")),
      operationName: fc.option(fc.string()),
      variables: fc.option(fc.dictionary(fc.string(), fc.jsonValue())),
      extensions: fc.option(fc.jsonValue()),
    });
    fc.assert(
      fc.property(fc.oneof(payload, fc.array(payload, { maxLength: 4 })), (value) => {
        const c = canonicalizeRequest({ method: "POST", url: RAILWAY, headers: { "content-type": "application/json" }, body: JSON.stringify(value) });
        if (c.ok) expect(isWellFormed(classify(c.request, registry, inventory))).toBe(true);
      }),
      RUNS,
    );
  });

  it("classifySql on arbitrary text", () => {
    const sqlish = fc.array(fc.constantFrom("SELECT", "DELETE", "FROM", "t", ";", "(", ")", "WITH", "AS", "'", "$$", "--", "/*", "*/", "1", ","), { maxLength: 30 }).map((w) => w.join(" "));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), sqlish), (sql) => {
        const result = classifySql(sql);
        expect(result.actions.length).toBeGreaterThan(0);
      }),
      RUNS,
    );
  });
});

describe("a request's effect is never lower than any of its parts", () => {
  const FIELDS = ['me { id }', 'project(id: "p") { id }', 'volumeDelete(volumeId: "v")', 'variableUpsert(input: {name: "a"})', 'deleteThing(id: 1)', 'serviceDelete(id: "s")', "__typename"];
  const STATEMENTS = ["SELECT 1", "SELECT * FROM t", "DELETE FROM t", "DELETE FROM t WHERE id = 1", "DROP TABLE x", "TRUNCATE t", "SET ROLE admin", "EXPLAIN SELECT 1", "COPY t TO PROGRAM 'x'", "INSERT INTO t VALUES (1)"];

  it("GraphQL: a mutation with several fields vs each field alone", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...FIELDS), { minLength: 1, maxLength: 5 }), fc.boolean(), (fields, batch) => {
        const whole = batch
          ? classifyRequest("POST", RAILWAY, { body: json(fields.map((f) => ({ query: `mutation { ${f} }` }))) })
          : classifyRequest("POST", RAILWAY, { body: json({ query: `mutation { ${fields.join(" ")} }` }) });
        if (!whole.ok) throw new Error(whole.reason);
        for (const field of fields) {
          const part = classifyRequest("POST", RAILWAY, { body: json({ query: `mutation { ${field} }` }) });
          if (!part.ok) throw new Error(part.reason);
          expect(effectRank(whole.effect)).toBeGreaterThanOrEqual(effectRank(part.effect));
        }
      }),
      { numRuns: 100 },
    );
  });

  it("SQL: several statements vs each statement alone", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...STATEMENTS), { minLength: 1, maxLength: 5 }), (stmts) => {
        const whole = classifySql(stmts.join("; "));
        for (const stmt of stmts) expect(effectRank(whole.effect)).toBeGreaterThanOrEqual(effectRank(classifySql(stmt).effect));
      }),
      { numRuns: 100 },
    );
  });

  it("MCP: a batch vs each message alone", () => {
    const TOOLS = ["list_volumes", "delete_volume", "restart_service", "unknown_tool"];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TOOLS), { minLength: 1, maxLength: 4 }), (tools) => {
        const msg = (name: string, id: number) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: {} } });
        const whole = classifyRequest("POST", "https://mcp.example.com/mcp", { body: json(tools.map(msg)) });
        if (!whole.ok) throw new Error(whole.reason);
        for (const tool of tools) {
          const part = classifyRequest("POST", "https://mcp.example.com/mcp", { body: json(msg(tool, 1)) });
          if (!part.ok) throw new Error(part.reason);
          expect(effectRank(whole.effect)).toBeGreaterThanOrEqual(effectRank(part.effect));
        }
      }),
      { numRuns: 50 },
    );
  });
});
