import { describe, expect, it } from "vitest";
import { parsePolicy } from "@/lib/policy/parse";
import type { PolicyContext } from "@/lib/policy/references";
import { policyTemplates } from "@/lib/policy/templates";
import { exampleDescriptors } from "@/lib/semantics/descriptors/examples";
import { createInventory } from "@/lib/semantics/inventory";
import { defaultRegistry, registryWith } from "@/lib/semantics/registry";

const context: PolicyContext = {
  registry: registryWith([...exampleDescriptors, { id: "vault", hosts: ["vault.test"], protocol: "rest", proxy: { tls: "passthrough" } }]),
  inventory: createInventory([
    { environment: "staging", resources: ["vol_stg"] },
    { environment: "production-eu", service: "railway", resources: ["vol_eu"] },
  ]),
};

function errors(rule: Record<string, unknown>, ctx = context): string[] {
  const yaml = `rules:\n  - ${Object.entries({ decision: "deny", ...rule })
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join("\n    ")}\n`;
  const parsed = parsePolicy(yaml, { references: ctx });
  return parsed.ok ? [] : parsed.errors.map((e) => `${e.path}: ${e.message}`);
}

describe("a rule that names something that does not exist is an error", () => {
  const typos: Array<[string, Record<string, unknown>, RegExp]> = [
    ["service typo", { service: "railwy" }, /rules\[0\]\.service: .*service "railwy" does not exist \(did you mean "railway"\?\)/],
    ["service in another case is still another name", { service: "GitHub" }, /did you mean "github"/],
    ["custom service typo", { service: "ops-mpc" }, /did you mean "ops-mcp"/],
    ["environment typo", { service: "railway", environments: ["stagng"] }, /environments\[0\]: .*"stagng" does not exist \(did you mean "staging"\?\)/],
    ["environment the inventory does not have", { service: "railway", environments: ["qa"] }, /"qa" does not exist.*known environments \(from the inventory\): production, staging, production-eu/],
    ["environment glob that matches nothing", { service: "railway", environments: ["dev-*"] }, /"dev-\*" matches no environment/],
    ["GraphQL operation one letter off", { service: "railway", operations: ["volumDelete"] }, /operations\[0\]: .*"volumDelete" is not an operation of service railway \(did you mean "volumeDelete"\?\)/],
    ["GraphQL operation that is not a GraphQL name", { service: "railway", operations: ["volume-delete"] }, /is not an operation of service railway/],
    ["REST operation typo", { service: "github", operations: ["repos.delet"] }, /did you mean "repos.delete"/],
    ["REST operation from another protocol", { service: "github", operations: ["DROP TABLE"] }, /is not an operation of service github/],
    ["REST glob that matches nothing", { service: "github", operations: ["repo.*"] }, /"repo\.\*" matches no operation of service github/],
    ["MCP tool typo", { service: "ops-mcp", operations: ["delete_volum"] }, /did you mean "delete_volume"/],
    ["MCP method in the wrong case", { service: "ops-mcp", operations: ["Tools/Lists"] }, /is not an operation/],
    ["SQL statement typo", { service: "pg-http", operations: ["DROP TABEL"] }, /did you mean "DROP TABLE"/],
    ["unknown hosts have METHOD /path operations only", { service: "unknown", operations: ["delete"] }, /is not an operation of service unknown/],
    ["any service: a name no service produces", { service: "*", operations: ["volumDelete"] }, /did you mean "volumeDelete"/],
  ];
  for (const [name, rule, message] of typos) {
    it(name, () => {
      expect(errors(rule).join("\n")).toMatch(message);
    });
  }
  it("every problem of a rule is reported, with the line", () => {
    const parsed = parsePolicy("rules:\n  - id: r\n    service: railway\n    environments: [stagng, qa]\n    operations: [volumDelete]\n    decision: deny\n", { references: context });
    expect(parsed.ok ? [] : parsed.errors.map((e) => [e.path, e.line])).toEqual([
      ["rules[0].environments[0]", 4],
      ["rules[0].environments[1]", 4],
      ["rules[0].operations[0]", 5],
    ]);
  });
});

describe("names that exist are accepted", () => {
  const fine: Array<Record<string, unknown>> = [
    { service: "railway", environments: ["staging", "production", "production-*", "*"], operations: ["volumeDelete", "VOLUMEDELETE", "volume*", "serviceCreate", "__typename"] },
    { service: "github", operations: ["repos.delete", "HEAD repos.get", "repos.*", "DELETE /repos/acme/*", "GET *", "*"] },
    { service: "ops-mcp", operations: ["delete_volume", "list_anything", "tools/list", "initialize", "some.new/tool-1"] },
    { service: "pg-http", operations: ["DROP TABLE", "drop table", "SELECT", "nextval", "purge_tenant", "app.purge_tenant", "SET work_mem", "OPERATOR(public.+)"] },
    { service: "unknown", operations: ["DELETE /v1/*", "GET /", "*"] },
    { service: "vault", operations: ["tunnel"] },
    { service: "*", operations: ["repos.delete", "volumeDelete", "DROP TABLE"] },
  ];
  for (const rule of fine) {
    it(`${String(rule["service"])}: ${JSON.stringify(rule["operations"])}`, () => {
      expect(errors(rule)).toEqual([]);
    });
  }
  it("without a context only the format is checked (templates are edited before use)", () => {
    expect(parsePolicy("rules:\n  - service: nowhere\n    decision: deny\n").ok).toBe(true);
  });
  it("the templates are valid against the built-ins once their services and environments exist", () => {
    const ctx: PolicyContext = {
      registry: registryWith(exampleDescriptors),
      inventory: createInventory([{ environment: "staging", resources: ["x"] }]),
    };
    for (const t of policyTemplates) expect(parsePolicy(t.yaml, { references: ctx }), t.id).toMatchObject({ ok: true });
  });
  it("the database-read-only template names a custom service: an error until it exists", () => {
    const t = policyTemplates.find((p) => p.id === "database-read-only");
    const parsed = parsePolicy(t?.yaml ?? "", { references: { registry: defaultRegistry(), inventory: createInventory() } });
    expect(parsed.ok ? "" : parsed.errors[0]?.message).toMatch(/service "pg-http" does not exist/);
  });
});
