import { beforeAll, describe, expect, it } from "vitest";
import { loadSqlParser } from "@/lib/semantics/sql";
import type { Classification } from "@/lib/semantics/types";
import { classifyRequest, json, RAILWAY } from "./support";

beforeAll(async () => {
  await loadSqlParser();
});

const seen = (result: Classification) => (result.ok ? result.actions.map((a) => [a.operation, a.resource, a.environment]) : result.code);
const mcpCall = (name: string, args: Record<string, unknown>) => json({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: args } });

/**
 * Servers often trim what names a resource (Rails' strip, Go's TrimSpace, a database lookup
 * that ignores trailing blanks), so " vol_123 " or "vol_123\t" may act on vol_123: a rule or an
 * inventory entry for vol_123 must apply to the padded spelling too.
 */
describe("a resource padded with whitespace is judged as its trimmed form too", () => {
  for (const pad of [" vol_123", "vol_123 ", "vol_123\t", "\tvol_123\n", "\u00a0vol_123"]) {
    it(`GraphQL volumeDelete(volumeId: ${JSON.stringify(pad)}) names vol_123 (production)`, () => {
      const result = classifyRequest("POST", RAILWAY, { body: json({ query: "mutation($v: String!) { volumeDelete(volumeId: $v) }", variables: { v: pad } }) });
      const actions = seen(result);
      expect(actions).toContainEqual(["volumeDelete", "vol_123", "production"]);
      expect(Array.isArray(actions) && actions.every((a) => a[2] === "production")).toBe(true);
    });
  }

  for (const path of ["/volumes/%20prod-db", "/volumes/%20prod-db%20", "/volumes/prod-db%C2%A0", "/volumes/%E2%80%83prod-db"]) {
    it(`REST DELETE ${path} names prod-db`, () => {
      expect(seen(classifyRequest("DELETE", `https://api.storage.example.com${path}`))).toContainEqual(["volumes.delete", "prod-db", "production"]);
    });
  }

  it("REST: a padded owner or repository of GitHub names the repository", () => {
    expect(seen(classifyRequest("DELETE", "https://api.github.com/repos/%20acme/app"))).toContainEqual(["repos.delete", "acme/app", "production"]);
    expect(seen(classifyRequest("DELETE", "https://api.github.com/repos/acme/%20app"))).toContainEqual(["repos.delete", "acme/app", "production"]);
  });

  for (const database of [" payroll", "payroll ", "payroll\t"]) {
    it(`SQL database ${JSON.stringify(database)} is the production payroll`, () => {
      const result = classifyRequest("POST", "https://sql.example.com/sql", { body: json({ query: "SELECT * FROM orders", database }) });
      expect(result.ok && result.actions.map((a) => a.environment)).toEqual(["production"]);
    });
  }

  it("SQL: a padded staging database name is still staging (the control)", () => {
    const result = classifyRequest("POST", "https://sql.example.com/sql", { body: json({ query: "SELECT * FROM orders", database: "app_staging " }) });
    expect(result.ok && result.actions.map((a) => a.environment)).toEqual(["staging"]);
  });

  it("MCP: a padded resource argument names the resource", () => {
    expect(seen(classifyRequest("POST", "https://mcp.example.com/mcp", { body: mcpCall("delete_volume", { volume_id: " vol_123\t" }) }))).toContainEqual(["delete_volume", "vol_123", "production"]);
  });

  it("unpadded resources are one action (the control)", () => {
    expect(seen(classifyRequest("DELETE", "https://api.storage.example.com/volumes/prod-db"))).toEqual([["volumes.delete", "prod-db", "production"]]);
  });
});

describe("a string condition's value padded with whitespace", () => {
  const visibility = (value: string) => {
    const result = classifyRequest("PATCH", "https://api.github.com/repos/acme/app", { body: json({ visibility: value }) });
    return result.ok ? result.actions.map((a) => [a.operation, a.effect]) : result.code;
  };
  for (const value of [" public", "public ", "public\t", "\npublic", " Public "]) {
    it(`visibility: ${JSON.stringify(value)} makes the repository public (irreversible)`, () => {
      expect(visibility(value)).toEqual([["repos.update", "irreversible"]]);
    });
  }
  it('visibility: " private " is a write (the control)', () => {
    expect(visibility(" private ")).toEqual([["repos.update", "write"]]);
  });
});
