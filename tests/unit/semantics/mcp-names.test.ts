import { describe, expect, it } from "vitest";
import { decide } from "@/lib/policy/decide";
import { normalizePolicy, policySchema } from "@/lib/policy/schema";
import { compilePolicy } from "@/lib/policy/compiled";
import { classify } from "@/lib/semantics/classify";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import { normalizeResourceUri } from "@/lib/semantics/resource-uri";
import { canonical, classifyRequest, json } from "./support";

const MCP = "https://mcp.example.com/mcp";
const call = (name: string, args: Record<string, unknown> = {}) => ({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: args } });
const codeOf = (body: unknown) => {
  const r = classifyRequest("POST", MCP, { body: json(body) });
  return r.ok ? "ok" : r.code;
};

describe("MCP tool names outside the name grammar are refused, not unknown writes", () => {
  // A write-allowing policy would forward an "unknown" tool; a server that trims, folds or
  // normalises names would then run delete_volume.
  const names = [
    "delete_volume ",
    " delete_volume",
    "delete_volume\t",
    "delete\u200b_volume",
    "\ufeffdelete_volume",
    "ｄｅｌｅｔｅ_volume",
    "dеlete_volume", // Cyrillic е
    "delete_volume\u0301",
    "delete_volume\u0000",
    "delete volume",
    "",
    "x".repeat(129),
  ];
  for (const name of names) {
    it(JSON.stringify(name.slice(0, 20)), () => {
      expect(codeOf(call(name))).toBe("mcp_invalid_tool_name");
    });
  }
  it("the reason names the offending character", () => {
    const r = classifyRequest("POST", MCP, { body: json(call("delete\u200b_volume")) });
    expect(r.ok ? "" : r.reason).toMatch(/U\+200B/);
  });
  it("a case variant of a tool the descriptor names is refused", () => {
    for (const name of ["Delete_Volume", "DELETE_VOLUME", "LIST_volumes"]) expect(codeOf(call(name))).toBe("mcp_tool_name_variant");
  });
  it("names inside the grammar still classify (known and unknown)", () => {
    expect(codeOf(call("delete_volume", { volume_id: "v" }))).toBe("ok");
    expect(codeOf(call("ops.tools/run-1"))).toBe("ok");
  });
});

describe("JSON-RPC methods that are not MCP methods are refused unless declared", () => {
  const methods = ["admin/dropDatabase", "Tools/Call", "tools/call ", "TOOLS/LIST", "rpc.discover", "notifications/dropEverything", "sampling/createMessage"];
  for (const method of methods) {
    it(method, () => {
      expect(codeOf({ jsonrpc: "2.0", id: 1, method, params: {} })).toBe("mcp_unknown_method");
    });
  }
  it("a descriptor that declares a method makes it classifiable with its effect", () => {
    const registry = registryWith([{ id: "m", hosts: ["m.test"], protocol: "mcp", mcp: { methods: [{ name: "admin/stats", effect: "read" }] } }]);
    const run = (method: string) => classify(canonical("POST", "https://m.test/", { body: json({ jsonrpc: "2.0", id: 1, method }) }), registry, createInventory());
    const ok = run("admin/stats");
    expect(ok.ok && ok.actions[0]).toMatchObject({ operation: "admin/stats", effect: "read" });
    const other = run("admin/drop");
    expect(other.ok ? "ok" : other.code).toBe("mcp_unknown_method");
  });
  it("MCP's own methods keep working", () => {
    for (const method of ["initialize", "ping", "tools/list", "prompts/list", "completion/complete", "tasks/get", "notifications/initialized"]) {
      expect(codeOf({ jsonrpc: "2.0", id: 1, method, params: {} })).toBe("ok");
    }
  });
});

describe("resource URIs are normalised before matching", () => {
  const denyFiles = compilePolicy(
    normalizePolicy(policySchema.parse({ rules: [{ service: "ops-mcp", resources: ["file://*"], decision: "deny" }, { service: "ops-mcp", effects: ["read"] }] })),
  );
  const read = (uri: string) => ({ jsonrpc: "2.0", id: 1, method: "resources/read", params: { uri } });
  const spellings = [
    "file:/etc/passwd",
    "file:///etc/passwd",
    "FILE:///etc/passwd",
    "File:/etc/passwd",
    "file://localhost/etc/passwd",
    "file://LOCALHOST/etc/passwd",
    "file:////etc/passwd",
    "file:///etc//passwd",
    "file:///tmp/../etc/passwd",
    "file:///tmp/%2e%2e/etc/passwd",
    "file:///%65tc/passwd",
    "file:/./etc/./passwd",
    // Readers take a file by its path: a query is not part of it, this machine is no host.
    "file:///etc/passwd?",
    "file:///etc/passwd?x=1",
    "file://127.0.0.1/etc/passwd",
    "file://[::1]/etc/passwd",
  ];
  for (const uri of spellings) {
    it(`${uri} is file:///etc/passwd and the deny rule applies`, () => {
      const r = classifyRequest("POST", MCP, { body: json(read(uri)) });
      if (!r.ok) throw new Error(r.reason);
      expect(r.actions[0]?.resource).toBe("file:///etc/passwd");
      expect(decide(denyFiles, r.actions, 0).decision).toBe("deny");
    });
  }
  it("subscribe and unsubscribe name the resource too", () => {
    for (const method of ["resources/subscribe", "resources/unsubscribe"]) {
      const r = classifyRequest("POST", MCP, { body: json({ jsonrpc: "2.0", id: 1, method, params: { uri: "file:/etc/shadow" } }) });
      expect(r.ok && r.actions[0]?.resource).toBe("file:///etc/shadow");
    }
  });
  it("spellings different readers resolve differently are refused", () => {
    for (const uri of ["file://evil.example/etc/passwd", "file://10.0.0.1/share/x", "file:///etc%2Fpasswd", "file:///etc%5Cpasswd", "file:///etc/passwd%00.txt", "file:///etc\\passwd", "file:///etc/passwd#x", "etc/passwd", "file:etc/passwd", "file:///etc/pass wd", "file:///etc/%zz"]) {
      expect(normalizeResourceUri(uri).ok, uri).toBe(false);
    }
  });
  it("other schemes: case, default ports, escapes and dot segments", () => {
    expect(normalizeResourceUri("HTTPS://Example.COM:443/a/./b/../c?x=%7e")).toEqual({ ok: true, uri: "https://example.com/a/c?x=~" });
    expect(normalizeResourceUri("https://example.com")).toEqual({ ok: true, uri: "https://example.com/" });
    expect(normalizeResourceUri("postgres://db.internal:5432/app/public/users")).toEqual({ ok: true, uri: "postgres://db.internal:5432/app/public/users" });
    expect(normalizeResourceUri("note://x/caf%c3%a9/é")).toEqual({ ok: true, uri: "note://x/caf%C3%A9/%C3%A9" });
    expect(normalizeResourceUri("urn:isbn:123")).toEqual({ ok: true, uri: "urn:isbn:123" });
  });
  it("URI-valued tool arguments are normalised the same way", () => {
    const registry = registryWith([{ id: "fs", hosts: ["fs.test"], protocol: "mcp", mcp: { tools: [{ name: "read_file", effect: "read", resourceArg: "uri" }] } }]);
    const r = classify(canonical("POST", "https://fs.test/", { body: json(call("read_file", { uri: "file:/etc/passwd" })) }), registry, createInventory());
    expect(r.ok && r.actions[0]?.resource).toBe("file:///etc/passwd");
  });
});
