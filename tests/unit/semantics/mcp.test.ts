import { describe, expect, it } from "vitest";
import type { Effect } from "@/lib/semantics/types";
import { classifyRequest, json } from "./support";

const MCP = "https://mcp.example.com/mcp";
const call = (name: string, args: Record<string, unknown> = {}, id = 1) => ({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });

describe("MCP over streamable HTTP", () => {
  const cases: Array<{ name: string; body: unknown; expected: Array<[string, Effect, string]> }> = [
    { name: "initialize is a read", body: { jsonrpc: "2.0", id: 1, method: "initialize", params: {} }, expected: [["initialize", "read", "-"]] },
    { name: "tools/list is a read", body: { jsonrpc: "2.0", id: 1, method: "tools/list" }, expected: [["tools/list", "read", "-"]] },
    { name: "resources/read is a read of its URI", body: { jsonrpc: "2.0", id: 1, method: "resources/read", params: { uri: "file:///a" } }, expected: [["resources/read", "read", "file:///a"]] },
    { name: "notifications are reads", body: { jsonrpc: "2.0", method: "notifications/initialized" }, expected: [["notifications/initialized", "read", "-"]] },
    { name: "tools/call: the tool name is the operation", body: call("list_volumes"), expected: [["list_volumes", "read", "-"]] },
    { name: "tools/call: descriptor effect and resource argument", body: call("delete_volume", { volume_id: "vol_9" }), expected: [["delete_volume", "irreversible", "vol_9"]] },
    { name: "tools/call: unknown tools are writes", body: call("do_something"), expected: [["do_something", "write", "-"]] },
    { name: "a response to a server request is a read", body: { jsonrpc: "2.0", id: 7, result: {} }, expected: [["response", "read", "-"]] },
    { name: "unknown methods are writes", body: { jsonrpc: "2.0", id: 1, method: "logging/setLevel", params: { level: "debug" } }, expected: [["logging/setLevel", "write", "-"]] },
    {
      name: "batch mixing a read and an irreversible call: both",
      body: [{ jsonrpc: "2.0", id: 1, method: "tools/list" }, call("delete_volume", { volume_id: "v" }, 2)],
      expected: [["tools/list", "read", "-"], ["delete_volume", "irreversible", "v"]],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = classifyRequest("POST", MCP, { body: json(c.body) });
      if (!result.ok) throw new Error(`${result.code}: ${result.reason}`);
      expect(result.actions.map((a) => [a.operation, a.effect, a.resource])).toEqual(c.expected);
    });
  }
  it("tools/call keeps the arguments in the detail", () => {
    const result = classifyRequest("POST", MCP, { body: json(call("restart_service", { service: "api" })) });
    expect(result.ok && result.actions[0]?.detail?.["arguments"]).toEqual({ service: "api" });
    expect(result.ok && result.actions[0]?.resource).toBe("api");
  });
  it("GET opens the event stream (read)", () => {
    const result = classifyRequest("GET", MCP);
    expect(result.ok && result.actions[0]?.effect).toBe("read");
  });
  const rejections: Array<{ name: string; body: string; code: string }> = [
    { name: "not JSON-RPC 2.0", body: json({ id: 1, method: "tools/list" }), code: "mcp_invalid_message" },
    { name: "tools/call without a name", body: json({ jsonrpc: "2.0", id: 1, method: "tools/call", params: {} }), code: "mcp_invalid_message" },
    { name: "arguments that are not an object", body: json({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x", arguments: [1] } }), code: "mcp_invalid_message" },
    { name: "empty batch", body: "[]", code: "mcp_invalid_message" },
    { name: "duplicate keys", body: '{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}', code: "invalid_json" },
  ];
  for (const r of rejections) {
    it(`rejects: ${r.name}`, () => {
      const result = classifyRequest("POST", MCP, { body: r.body });
      expect(result.ok ? null : result.code).toBe(r.code);
    });
  }
  it("other paths on the MCP host are not endpoints", () => {
    const result = classifyRequest("POST", "https://mcp.example.com/other", { body: json(call("x")) });
    expect(result.ok ? null : result.code).toBe("unknown_endpoint");
  });
});

describe("MCP: the resource argument of a tool", () => {
  // A deny rule on `vol_123` was dodged by sending ["vol_123"] (resource "-"); a server that
  // accepts the list, or coerces it to "vol_123", deletes it.
  const resources = (body: unknown) => {
    const result = classifyRequest("POST", MCP, { body: json(body) });
    return result.ok ? result.actions.map((a) => [a.operation, a.resource, a.environment]) : result.code;
  };
  it("the argument in another spelling of its name names the resource too (a server that accepts either acts on it)", () => {
    // volumeId, VolumeId, volume-id: one name to a pydantic model with a camel alias generator.
    for (const key of ["volumeId", "VolumeId", "volume-id", "VOLUMEID", "volume__id"]) {
      expect(resources(call("delete_volume", { [key]: "vol_123" })), key).toEqual([["delete_volume", "vol_123", "production"]]);
    }
    // Both spellings, naming two volumes: both judged.
    expect(resources(call("delete_volume", { volume_id: "vol_a", volumeId: "vol_b" }))).toEqual([
      ["delete_volume", "vol_a", "production"],
      ["delete_volume", "vol_b", "production"],
    ]);
    // A name that only resembles it is not it.
    expect(resources(call("delete_volume", { volume: "vol_123" }))).toEqual([["delete_volume", "-", "production"]]);
    // An object under another spelling is refused as under the name itself.
    expect(resources(call("delete_volume", { volumeId: { $ne: null } }))).toBe("mcp_invalid_resource_argument");
  });

  it("a list names each of its elements", () => {
    expect(resources(call("delete_volume", { volume_id: ["vol_123"] }))).toEqual([["delete_volume", "vol_123", "production"]]);
    expect(resources(call("delete_volume", { volume_id: ["vol_a", "vol_b", "vol_a", 7] }))).toEqual([
      ["delete_volume", "vol_a", "production"],
      ["delete_volume", "vol_b", "production"],
      ["delete_volume", "7", "production"],
    ]);
  });
  it("a list in a batch keeps each element's batch index", () => {
    const result = classifyRequest("POST", MCP, { body: json([call("list_volumes"), call("delete_volume", { volume_id: ["vol_a", "vol_b"] }, 2)]) });
    expect(result.ok && result.actions.map((a) => [a.resource, a.detail?.["batchIndex"]])).toEqual([["-", 0], ["vol_a", 1], ["vol_b", 1]]);
  });
  for (const [label, value] of [
    ["an object", { id: "vol_123" }],
    ["a query operator", { $ne: null }],
    ["a boolean", true],
    ["a list holding an object", [{ id: "vol_123" }]],
    ["a list holding a list", [["vol_123"]]],
    ["a list holding null", [null]],
  ] as const) {
    it(`${label} is refused`, () => {
      expect(resources(call("delete_volume", { volume_id: value }))).toBe("mcp_invalid_resource_argument");
    });
  }
  it("null or absent: no resource (the control)", () => {
    expect(resources(call("delete_volume", { volume_id: null }))).toEqual([["delete_volume", "-", "production"]]);
    expect(resources(call("delete_volume", {}))).toEqual([["delete_volume", "-", "production"]]);
  });
});

describe("MCP: a resource given as an integer beyond 2^53", () => {
  // 9007199254740993 is read as 9007199254740992 here (and by JavaScript), exactly by Python:
  // a deny rule naming the real id was judged against its neighbour.
  it("is refused, in a list too; a string of the same digits is the resource (the control)", () => {
    for (const volume of ["9007199254740993", "[1, 12345678901234567890]"]) {
      const result = classifyRequest("POST", MCP, { body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_volume","arguments":{"volume_id":${volume}}}}` });
      expect(result.ok ? result.actions.map((a) => a.resource) : result.code).toBe("unsafe_integer");
    }
    const exact = classifyRequest("POST", MCP, { body: json(call("delete_volume", { volume_id: "9007199254740993" })) });
    expect(exact.ok && exact.actions.map((a) => a.resource)).toEqual(["9007199254740993"]);
    const small = classifyRequest("POST", MCP, { body: json(call("delete_volume", { volume_id: 9007199254740991 })) });
    expect(small.ok && small.actions.map((a) => a.resource)).toEqual(["9007199254740991"]);
  });
});

describe("MCP: a resource given as a number with leading zeros or a sign", () => {
  // pydantic (lax), zod's coerce and parseInt read "0123" for an integer argument as 123: a deny
  // rule naming 123 must apply.
  it("names the number too", () => {
    const result = classifyRequest("POST", MCP, { body: json(call("delete_volume", { volume_id: ["0123", "+7", "vol_1"] })) });
    expect(result.ok && result.actions.map((a) => a.resource)).toEqual(["0123", "123", "+7", "7", "vol_1"]);
  });
  it("a plain number stays one resource (the control)", () => {
    const result = classifyRequest("POST", MCP, { body: json(call("delete_volume", { volume_id: "123" })) });
    expect(result.ok && result.actions.map((a) => a.resource)).toEqual(["123"]);
  });

  it("every spelling a coercing server reads as the integer names it too (Python's int, pydantic, Number())", () => {
    for (const spelling of ["1_23", "0x7b", "0X7B", "0o173", "0b1111011", "1.23e2", "123.0", "1230e-1", " 123", "\uff11\uff12\uff13", "\u0661\u0662\u0663"]) {
      const result = classifyRequest("POST", MCP, { body: json(call("delete_volume", { volume_id: spelling })) });
      expect(result.ok && result.actions.map((a) => a.resource), JSON.stringify(spelling)).toContain("123");
    }
  });

  it("what no server reads as an integer is not one (the control)", () => {
    for (const value of ["vol_123", "1.5", "-123", "1e99999", "12a", "1__2", "_12"]) {
      const result = classifyRequest("POST", MCP, { body: json(call("delete_volume", { volume_id: value })) });
      expect(result.ok && result.actions.map((a) => a.resource), value).toEqual([value]);
    }
  });
});
