/**
 * The resource an action acts on must itself be known to the inventory before any environment
 * but production is given to it. An agent can add identifiers the upstream ignores (an extra
 * argument, another path parameter): one of a staging thing beside a production volume made the
 * volume "staging", and a rule that waives approval in staging let its deletion through.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { classify } from "@/lib/semantics/classify";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import { exampleDescriptors } from "@/lib/semantics/descriptors/examples";
import { canonical, json, RAILWAY } from "./support";
import { loadSqlParser } from "@/lib/semantics/sql";

// SQL is unparseable (irreversible) until the parser is loaded: every verdict here assumes it is.
beforeAll(async () => {
  await loadSqlParser();
});

const registry = registryWith([
  ...exampleDescriptors,
  {
    id: "volumes-api",
    hosts: ["api.volumes.example.com", "api.volumes.staging.example.com"],
    protocol: "rest",
    rest: {
      routes: [
        { method: "DELETE", path: "/projects/{project}/volumes/{id}", operation: "projVolumeDelete", effect: "irreversible", resource: "{id}" },
        { method: "POST", path: "/volumes/{id}/restore", operation: "volumeRestore", effect: "irreversible", resource: "{id}" },
      ],
    },
  },
  {
    id: "volumes-graphql",
    hosts: ["gql.volumes.example.com"],
    protocol: "graphql",
    graphql: { paths: ["/graphql"], resourceArgs: ["volumeId", "projectId", "environmentId"], fields: [{ name: "volumeDelete", effect: "irreversible", resourceArg: "volumeId" }] },
  },
]);

const inventory = createInventory([
  { environment: "staging", resources: ["vol_stg", "env_stg", "proj_stg"] },
  { environment: "production", resources: ["vol_123", "env_prod"] },
  { environment: "staging", service: "pg-http", resources: ["app_staging"] },
  { environment: "staging", hosts: ["*.staging.example.com"] },
]);

function environments(method: string, url: string, body?: unknown): string[] {
  const c = classify(canonical(method, url, body === undefined ? {} : { body: json(body) }), registry, inventory);
  if (!c.ok) throw new Error(`${c.code}: ${c.reason}`);
  return c.actions.map((a) => `${a.operation} ${a.resource} ${a.environment}`);
}

describe("the inventory: an action's own resource decides, identifiers beside it never vouch for it", () => {
  it("GraphQL: a staging identifier in another argument leaves an unknown volume production", () => {
    const gql = "https://gql.volumes.example.com/graphql";
    for (const extra of ['projectId: "vol_stg"', 'projectId: "proj_stg"', 'environmentId: "env_stg"', 'input: { environmentId: "env_stg" }']) {
      expect(environments("POST", gql, { query: `mutation { volumeDelete(volumeId: "vol_prod_x", ${extra}) }` })).toEqual(["volumeDelete vol_prod_x production"]);
    }
    // The built-in Railway service alike.
    expect(environments("POST", RAILWAY, { query: 'mutation { volumeDelete(volumeId: "vol_prod_x", environmentId: "env_stg") }' })).toEqual(["volumeDelete vol_prod_x production"]);
    // A known staging volume stays staging beside an identifier nobody listed...
    expect(environments("POST", gql, { query: 'mutation { volumeDelete(volumeId: "vol_stg", projectId: "p_other") }' })).toEqual(["volumeDelete vol_stg staging"]);
    // ...and becomes production beside a production one (conflicting answers), as before.
    expect(environments("POST", gql, { query: 'mutation { volumeDelete(volumeId: "vol_stg", environmentId: "env_prod") }' })).toEqual(["volumeDelete vol_stg production"]);
  });

  it("REST: another path parameter naming a staging thing leaves an unknown resource production", () => {
    expect(environments("DELETE", "https://api.volumes.example.com/projects/vol_stg/volumes/vol_prod_x")).toEqual(["projVolumeDelete vol_prod_x production"]);
    expect(environments("DELETE", "https://api.volumes.example.com/projects/proj_stg/volumes/vol_prod_x")).toEqual(["projVolumeDelete vol_prod_x production"]);
    expect(environments("DELETE", "https://api.volumes.example.com/projects/p1/volumes/vol_stg")).toEqual(["projVolumeDelete vol_stg staging"]);
    // A body parameter naming a staging thing does not vouch either.
    expect(environments("POST", "https://api.volumes.example.com/volumes/vol_prod_x/restore", { project: "proj_stg" })).toEqual(["volumeRestore vol_prod_x production"]);
  });

  it("a host the inventory places still places every resource on it", () => {
    expect(environments("DELETE", "https://api.volumes.staging.example.com/projects/p1/volumes/vol_unlisted")).toEqual(["projVolumeDelete vol_unlisted staging"]);
  });

  it("a padded resource is known by its trimmed spelling", () => {
    const actions = environments("DELETE", "https://api.storage.example.com/volumes/%20vol_stg");
    expect(actions).toContain("volumes.delete vol_stg staging");
    expect(actions.every((a) => a.endsWith(" staging"))).toBe(true);
  });

  it("SQL over HTTP: the database the request connects to places its tables", () => {
    const actions = environments("POST", "https://sql.example.com/sql", { query: "DELETE FROM orders WHERE id = 1", database: "app_staging" });
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.every((a) => a.endsWith(" staging"))).toBe(true);
  });
});

describe("an action that names no resource of its own", () => {
  const shop = registryWith([
    {
      id: "shop",
      hosts: ["api.shop.test"],
      protocol: "graphql",
      graphql: { paths: ["/graphql"], resourceArgs: ["id", "productId"], fields: [{ name: "nukeShop", effect: "irreversible" }] },
    },
    {
      id: "bulk",
      hosts: ["api.bulk.test", "api.bulk.staging.example.com"],
      protocol: "rest",
      rest: { routes: [{ method: "DELETE", path: "/volumes", operation: "volumes.deleteAll", effect: "destructive" }, { method: "GET", path: "/volumes", operation: "volumes.list", effect: "read" }] },
    },
  ]);
  const places = createInventory([
    { environment: "staging", resources: ["staging-*"] },
    { environment: "production", resources: ["prod-*"] },
    { environment: "staging", hosts: ["*.staging.example.com"] },
  ]);
  const judged = (method: string, url: string, body?: unknown) => {
    const c = classify(canonical(method, url, body === undefined ? {} : { body: json(body) }), shop, places);
    if (!c.ok) throw new Error(`${c.code}: ${c.reason}`);
    return c.actions.map((a) => `${a.operation} ${a.resource} ${a.environment}`);
  };
  const gql = (query: string) => judged("POST", "https://api.shop.test/graphql", { query });

  it("a destructive or irreversible one is production, whatever staging identifier sits beside it", () => {
    expect(gql('mutation { deleteProduct(sku: "prod-1", shopId: "staging-1") { ok } }')).toEqual(["deleteProduct - production"]);
    expect(gql('mutation { deleteAllProducts(exceptId: "staging-1") { ok } }')).toEqual(["deleteAllProducts - production"]);
    expect(gql('mutation { nukeShop(shopId: "staging-1") }')).toEqual(["nukeShop - production"]);
    expect(judged("DELETE", "https://api.bulk.test/volumes?projectId=staging-1")).toEqual(["volumes.deleteAll /volumes production"]);
  });

  it("its host still places it, and a read or write without a resource is still placed by its identifiers", () => {
    expect(judged("DELETE", "https://api.bulk.staging.example.com/volumes")).toEqual(["volumes.deleteAll /volumes staging"]);
    expect(gql('mutation { createProduct(input: {shopId: "staging-1", name: "x"}) { ok } }')).toEqual(["createProduct - staging"]);
    expect(gql('{ products(shopId: "staging-1") { name } }')).toEqual(["products - staging"]);
  });

  it("a resource argument's plural names each element (`ids`, `productIds`)", () => {
    expect(gql('mutation { deleteProducts(ids: ["prod-1", "staging-2"]) { ok } }')).toEqual(["deleteProducts prod-1 production", "deleteProducts staging-2 staging"]);
    expect(gql('mutation { deleteProducts(input: {productIds: ["prod-1"]}) { ok } }')).toEqual(["deleteProducts prod-1 production"]);
  });
});

describe("the inventory and case", () => {
  const services = registryWith([
    ...exampleDescriptors,
    { id: "items", hosts: ["api.items.test"], protocol: "rest", rest: { routes: [{ method: "DELETE", path: "/items/{id}", operation: "items.delete", effect: "irreversible", resource: "{id}" }] } },
  ]);
  const places = createInventory([
    { environment: "staging", service: "items", resources: ["Stg1"] },
    { environment: "staging", service: "github", resources: ["acme/Sandbox"] },
  ]);
  const judged = (method: string, url: string) => {
    const c = classify(canonical(method, url), services, places);
    if (!c.ok) throw new Error(`${c.code}: ${c.reason}`);
    return c.actions.map((a) => `${a.resource} ${a.environment}${a.caseInsensitive ? " any-case" : ""}`);
  };

  it("on a case-sensitive API a case variant of a listed resource is another, unlisted one: production", () => {
    expect(judged("DELETE", "https://api.items.test/items/Stg1")).toEqual(["Stg1 staging"]);
    for (const variant of ["stg1", "STG1", "sTg1"]) expect(judged("DELETE", `https://api.items.test/items/${variant}`)).toEqual([`${variant} production`]);
  });

  it("on a service that ignores case (GitHub), any case is the listed one, and its actions say so", () => {
    expect(judged("DELETE", "https://api.github.com/repos/ACME/sandbox")).toEqual(["acme/sandbox staging any-case"]);
  });
});
