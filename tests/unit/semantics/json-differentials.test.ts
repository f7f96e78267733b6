import { beforeAll, describe, expect, it } from "vitest";
import { parseStrictJson } from "@/lib/semantics/json";
import { loadSqlParser } from "@/lib/semantics/sql";
import { classifyRequest, RAILWAY } from "./support";

beforeAll(async () => {
  await loadSqlParser();
});

const MCP = "https://mcp.example.com/mcp";
const SQL = "https://sql.example.com/sql";
const GITHUB = "https://api.github.com/repos/acme/app/git/refs/heads/main";

/** Raw JSON text: JSON.stringify cannot produce most of these bodies. */
const rejected = (url: string, body: string, method = "POST") => {
  const result = classifyRequest(method, url, { body });
  return result.ok ? `accepted: ${result.actions.map((a) => `${a.operation}/${a.effect}`).join(",")}` : result.code;
};

describe("JSON keys a case-insensitive server reads as one are refused", () => {
  // Bulkhead reads one key, a server that folds case (Go's encoding/json, the Go MCP SDK) the other.
  const twins: Array<[string, string, string]> = [
    ["MCP name/Name", MCP, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes","Name":"drop_database"}}'],
    ["MCP method/Method", MCP, '{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"drop_database"}}'],
    ["MCP params/Params", MCP, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes"},"Params":{"name":"drop_database"}}'],
    ["MCP params/paramſ (long s folds to s)", MCP, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes"},"paramſ":{"name":"drop_database"}}'],
    ["Kelvin sign folds to k", MCP, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes","arguments":{"kind":"a","\u212Aind":"b"}}}'],
    ["fullwidth letters", MCP, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes","ｎａｍｅ":"drop_database"}}'],
    ["GraphQL query/QUERY", RAILWAY, '{"query":"{ me { id } }","QUERY":"mutation { volumeDelete(volumeId: \\"vol_123\\") }"}'],
    ["SQL query/Query", SQL, '{"query":"SELECT 1","Query":"DROP TABLE users"}'],
    ["REST when condition force/Force", GITHUB, '{"sha":"abc","force":false,"Force":true}'],
  ];
  for (const [name, url, body] of twins) {
    it(name, () => {
      expect(rejected(url, body, url === GITHUB ? "PATCH" : "POST")).toBe("invalid_json");
    });
  }
});

describe("JSON keys with control or invisible characters are refused", () => {
  const keys = ["name\\u0000", "na\\u200bme", "name\\u00ad", "\\ufeffname", "name\\t", "name\\u202e"];
  for (const key of keys) {
    it(JSON.stringify(key), () => {
      const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes","${key}":"drop_database"}}`;
      expect(rejected(MCP, body)).toBe("invalid_json");
    });
  }
  it("lone surrogates anywhere are refused (each decoder repairs them differently)", () => {
    expect(() => parseStrictJson('{"a":"x\\ud800"}')).toThrow(/lone surrogate/);
    expect(() => parseStrictJson('{"a":"\\udc00"}')).toThrow(/lone surrogate/);
    expect(() => parseStrictJson('{"a\\ud800b":1}')).toThrow(/lone surrogate/);
    expect(parseStrictJson('{"a":"\\ud83d\\ude00"}')).toEqual({ a: "😀" });
  });
});

describe("a lone case variant of a key Bulkhead reads is refused where it is read", () => {
  const variants: Array<[string, string, string, string]> = [
    // A response by the letter of JSON-RPC (no `method`), a tools/call for a case-insensitive server.
    ["result with Method is not a response", MCP, '{"jsonrpc":"2.0","id":1,"result":{},"Method":"tools/call","params":{"name":"drop_database"}}', "POST"],
    ["error with METHOD", MCP, '{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"},"METHOD":"tools/call"}', "POST"],
    ["tools/call with Name only", MCP, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"drop_database"}}', "POST"],
    ["tools/call with Arguments", MCP, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_volume","Arguments":{"volume_id":"v"}}}', "POST"],
    ["resource argument Volume_Id", MCP, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_volume","arguments":{"Volume_Id":"vol_prod"}}}', "POST"],
    ["JsonRpc", MCP, '{"JsonRpc":"2.0","id":1,"method":"tools/list"}', "POST"],
    ["GraphQL Query only", RAILWAY, '{"Query":"mutation { volumeDelete(volumeId: \\"vol_123\\") }"}', "POST"],
    ["GraphQL OperationName", RAILWAY, '{"query":"query A { me { id } }","OperationName":"A"}', "POST"],
    ["SQL Query only", SQL, '{"Query":"DROP TABLE users"}', "POST"],
    ["SQL Database", SQL, '{"query":"SELECT 1","Database":"prod"}', "POST"],
    ["REST when: Force only", GITHUB, '{"sha":"abc","Force":true}', "PATCH"],
  ];
  for (const [name, url, body, method] of variants) {
    it(name, () => {
      expect(rejected(url, body, method)).toBe("json_key_variant");
    });
  }
  it("GraphQL over GET with ?Query= (servers that read parameters case-insensitively)", () => {
    const url = `${RAILWAY}?Query=${encodeURIComponent("{ me { id } }")}`;
    const result = classifyRequest("GET", url);
    expect(result.ok ? "ok" : result.code).toBe("json_key_variant");
  });
  it("a message with both a method and a result is not a response either", () => {
    expect(rejected(MCP, '{"jsonrpc":"2.0","id":1,"result":{},"method":"tools/call","params":{"name":"x"}}')).toBe("mcp_invalid_message");
  });
  it("exact keys still work", () => {
    expect(rejected(MCP, '{"jsonrpc":"2.0","id":1,"result":{}}')).toBe("accepted: response/read");
    expect(rejected(SQL, '{"query":"SELECT 1","database":"app"}')).toBe("accepted: SELECT/read");
  });
});
