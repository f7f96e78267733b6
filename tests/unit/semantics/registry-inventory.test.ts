import { describe, expect, it } from "vitest";
import { createInventory, parseInventoryYaml, resolveEnvironment } from "@/lib/semantics/inventory";
import { createRegistry, defaultRegistry, parseServicesYaml, RegistryError, registryWith } from "@/lib/semantics/registry";
import { exampleRest } from "@/lib/semantics/descriptors/examples";

describe("service registry", () => {
  it("matches built-in hosts", () => {
    const r = defaultRegistry();
    expect(r.match("api.github.com", 443, "https").kind).toBe("service");
    expect(r.match("backboard.railway.app", 443, "https").kind).toBe("service");
    expect(r.match("github.com", 443, "https").kind).toBe("none");
  });
  it("wildcards need at least one label and the longest suffix wins", () => {
    const r = createRegistry([
      { id: "a", hosts: ["*.example.com"], protocol: "rest" },
      { id: "b", hosts: ["*.eu.example.com"], protocol: "rest" },
    ]);
    const id = (host: string) => {
      const m = r.match(host, 443, "https");
      return m.kind === "service" ? m.descriptor.id : m.kind;
    };
    expect(id("x.example.com")).toBe("a");
    expect(id("x.eu.example.com")).toBe("b");
    expect(id("example.com")).toBe("none");
    expect(id("evil-example.com")).toBe("none");
  });
  it("a host claimed twice is a configuration error", () => {
    expect(() => registryWith([{ id: "gh2", hosts: ["api.github.com"], protocol: "rest" }])).toThrow(RegistryError);
  });
  it("invalid descriptors are reported with their path", () => {
    try {
      createRegistry([{ id: "Bad Id", hosts: [], protocol: "rest" }]);
      throw new Error("expected an error");
    } catch (error) {
      expect(error).toBeInstanceOf(RegistryError);
      expect((error as RegistryError).errors.join("\n")).toMatch(/services\[0\]\.id/);
    }
  });
  it("'unknown' is reserved", () => {
    expect(() => createRegistry([{ id: "unknown", hosts: ["x.example.com"], protocol: "rest" }])).toThrow(/reserved/);
  });
  it("loads custom services from YAML", () => {
    const parsed = parseServicesYaml(`services:
  - id: storage-api
    hosts: [api.storage.example.com]
    protocol: rest
    rest:
      routes:
        - { method: DELETE, path: "/volumes/{id}", operation: volumes.delete, effect: irreversible, resource: "{id}" }
`);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(registryWith(parsed.descriptors).get("storage-api")?.rest?.routes.length).toBe(1);
  });
  it("reports YAML service errors", () => {
    const parsed = parseServicesYaml("services:\n  - id: x\n    hosts: [a.example.com]\n    protocol: soap\n");
    expect(parsed.ok).toBe(false);
  });
  it("the example descriptor is valid", () => {
    expect(() => createRegistry([exampleRest])).not.toThrow();
  });
});

describe("environment inventory", () => {
  const inventory = createInventory([
    { environment: "production", service: "railway", resources: ["vol_prod"] },
    { environment: "staging", service: "railway", resources: ["vol_stg", "env_stg*"] },
    { environment: "dev", resources: ["vol_dev"] },
    { environment: "staging", hosts: ["*.staging.example.com"] },
  ]);
  const env = (keys: string[], service = "railway", host = "backboard.railway.com") => resolveEnvironment(inventory, { service, host, keys });

  it("unknown resources are production", () => expect(env(["vol_x"])).toBe("production"));
  it("no resources at all is production", () => expect(env([])).toBe("production"));
  it("a known staging resource", () => expect(env(["vol_stg"])).toBe("staging"));
  it("glob patterns", () => expect(env(["env_stg_2"])).toBe("staging"));
  it("a case variant of a listed resource is another resource (production), unless the service ignores case", () => {
    expect(env(["ENV_STG_2"])).toBe("production");
    expect(env(["VOL_STG"])).toBe("production");
    // Beside a listed staging resource, a case variant is a disagreement: production.
    expect(env(["vol_stg", "Vol_Stg"])).toBe("production");
    expect(resolveEnvironment(inventory, { service: "railway", host: "backboard.railway.com", keys: ["ENV_STG_2"], caseInsensitive: true })).toBe("staging");
  });
  it("staging and production together resolve to production", () => expect(env(["vol_stg", "vol_prod"])).toBe("production"));
  it("two different non-production tags resolve to production", () => expect(env(["vol_stg", "vol_dev"])).toBe("production"));
  it("service-scoped entries do not apply to other services", () => expect(env(["vol_stg"], "github")).toBe("production"));
  it("host patterns", () => expect(env([], "custom", "db.staging.example.com")).toBe("staging"));
  it("a fixed descriptor environment wins", () =>
    expect(resolveEnvironment(inventory, { service: "x", host: "h", keys: ["vol_prod"], fixed: "staging" })).toBe("staging"));
  it("parses from YAML", () => {
    const parsed = parseInventoryYaml("entries:\n  - environment: staging\n    resources: [a]\n");
    expect(parsed.ok && resolveEnvironment(parsed.inventory, { service: "s", host: "h", keys: ["a"] })).toBe("staging");
  });
  it("reports YAML errors", () => {
    expect(parseInventoryYaml("entries:\n  - resources: [a]\n").ok).toBe(false);
  });
});

/**
 * The inventory, a services file and a service descriptor are YAML a person types: a syntax error
 * is one line naming the line of the text, never the library's advice to programmers
 * ("please use YAML.parseAllDocuments()") nor its multi-line excerpt, which a command cut to a
 * first line ending in "at line 2, column 1:".
 */
describe("YAML syntax errors in the inventory and services files", () => {
  const errorsOf = (result: { ok: true } | { ok: false; errors: string[] }) => (result.ok ? [] : result.errors);
  it("are one line each, starting with the line they are on", () => {
    expect(errorsOf(parseInventoryYaml("entries: []\n---\nentries: []\n"))).toEqual(["line 2: a second YAML document starts here (after a `---` line); the file must hold exactly one"]);
    const syntax = errorsOf(parseServicesYaml("services: [\n  - id: x\n"));
    expect(syntax.length).toBeGreaterThan(0);
    for (const e of syntax) expect(e).toMatch(/^line \d+: [^\n]+$/);
    const duplicate = errorsOf(parseInventoryYaml("entries: []\nentries: []\n"));
    expect(duplicate).toEqual(["line 2: Map keys must be unique"]);
  });
  it("an alias with no anchor is named", () => {
    expect(errorsOf(parseInventoryYaml("entries: *nope\n"))).toEqual(["inventory: the YAML could not be read: the alias *nope names no anchor (&nope) set before it"]);
  });
});

/** The schema's refusals in the inventory and services files, said as what the value must be, not zod's wording. */
describe("schema errors in the inventory and services files", () => {
  const errorsOf = (result: { ok: true } | { ok: false; errors: string[] }) => (result.ok ? [] : result.errors);
  it("name the field and what it must be", () => {
    expect(errorsOf(parseInventoryYaml("environments:\n  staging: {}\n"))).toEqual(["inventory: Remove the unexpected field: environments."]);
    expect(errorsOf(parseInventoryYaml("entries:\n  - environment: 5\n    resources: x\n"))).toEqual(["entries.0.environment: must be a string, not a number", "entries.0.resources: must be an array, not a string"]);
    const services = errorsOf(parseServicesYaml("services:\n  - id: x\n    hosts: api.x.com\n    protocol: soap\n"));
    expect(services).toEqual(["services[0].hosts: must be an array, not a string", "services[0].protocol: Choose one of: rest, graphql, sql-http, mcp."]);
    for (const e of services) expect(e).not.toMatch(/Invalid input|received|Unrecognized/);
  });
});
