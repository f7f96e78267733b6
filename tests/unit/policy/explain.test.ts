import { beforeAll, describe, expect, it } from "vitest";
import { explainRequest } from "@/lib/policy/explain";
import { exampleDescriptors, exampleSqlHttp } from "@/lib/semantics/descriptors/examples";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import { NOW } from "./support";
import { loadSqlParser } from "@/lib/semantics/sql";

// SQL is unparseable (irreversible) until the parser is loaded: every verdict here assumes it is.
beforeAll(async () => {
  await loadSqlParser();
});

const RAILWAY = "https://backboard.railway.com/graphql/v2";
const inventory = createInventory([
  { environment: "production", service: "railway", resources: ["vol_123"] },
  { environment: "staging", service: "railway", resources: ["vol_stg", "env_stg"] },
]);
const STAGING_READ = `mode: enforce
unlisted: deny
rules:
  - id: railway-staging-read
    service: railway
    environments: [staging]
    effects: [read]
`;

describe("explainRequest (canonicalise + classify + decide)", () => {
  it("the PocketOS incident: read on staging, volumeDelete on the production volume → deny", async () => {
    const result = await explainRequest({
      policyYaml: STAGING_READ,
      method: "POST",
      url: RAILWAY,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "mutation VolumeDelete($id: String!) { volumeDelete(volumeId: $id) }", variables: { id: "vol_123" } }),
      inventory,
      now: NOW,
    });
    if (!result.ok) throw new Error("policy should parse");
    expect(result.decision).toBe("deny");
    expect(result.reason).toBe("irreversible `volumeDelete` on production volume vol_123: no rule allows irreversible effects on railway/production");
    expect(result.ruleId).toBeNull();
    expect(result.effect).toBe("irreversible");
    expect(result.service).toBe("railway");
    expect(result.request).toEqual({ method: "POST", url: RAILWAY });
  });

  it("the same task reading staging is allowed", async () => {
    const result = await explainRequest({
      policyYaml: STAGING_READ,
      method: "POST",
      url: RAILWAY,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: '{ environment(id: "env_stg") { name } }' }),
      inventory,
      now: NOW,
    });
    expect(result.ok && [result.decision, result.ruleId]).toEqual(["allow", "railway-staging-read"]);
  });

  it("malformed requests are rejected whatever the mode", async () => {
    const result = await explainRequest({ policyYaml: "mode: report\nrules: []", method: "GET", url: "https://api.github.com/repos/a/b/../c", now: NOW });
    expect(result.ok && result.decision).toBe("deny");
    expect(result.ok && result.rejected?.code).toBe("dot_segment");
    expect(result.ok && result.reason).toMatch(/^rejected \(dot_segment\)/);
  });

  it("ambiguous GraphQL is rejected with its reason", async () => {
    const result = await explainRequest({
      policyYaml: STAGING_READ,
      method: "POST",
      url: RAILWAY,
      body: JSON.stringify({ query: "query A { me { id } } mutation B { volumeDelete(volumeId: \"v\") }" }),
      headers: { "content-type": "application/json" },
      inventory,
      now: NOW,
    });
    expect(result.ok && result.rejected?.code).toBe("graphql_ambiguous_operation");
  });

  it("report mode reports what would happen", async () => {
    const result = await explainRequest({ policyYaml: "mode: report\nrules: []", method: "DELETE", url: "https://api.github.com/repos/acme/app", now: NOW });
    expect(result.ok && [result.decision, result.wouldBe]).toEqual(["allow", "deny"]);
  });

  it("custom services and SQL", async () => {
    const result = await explainRequest({
      policyYaml: "rules:\n  - { id: db-read, service: pg-http, effects: [read] }",
      method: "POST",
      url: "https://sql.example.com/sql",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "SELECT * FROM orders; DELETE FROM orders" }),
      registry: registryWith([exampleSqlHttp]),
      now: NOW,
    });
    expect(result.ok && result.decision).toBe("deny");
    expect(result.ok && result.reason).toBe(
      "destructive `DELETE` on production table orders (no WHERE clause: affects every row): no rule allows destructive effects on pg-http/production",
    );
    expect(result.ok && result.perAction.map((d) => d.decision)).toEqual(["allow", "deny"]);
  });

  it("policy errors are returned, not thrown", async () => {
    const result = await explainRequest({ policyYaml: "rules:\n  - service: x\n", method: "GET", url: "https://a.example.com/", now: NOW });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors[0]?.path).toBe("rules[0].effects");
  });
});

describe("explainRequest: a trailing dot does not dodge a deny rule naming a resource", () => {
  const policyYaml = `mode: enforce
unlisted: deny
rules:
  - id: no-prod-db
    service: storage-api
    resources: [prod-db]
    decision: deny
  - id: storage-all
    service: storage-api
    effects: [read, write, destructive, irreversible]
    waive_approval: true
`;
  for (const tail of ["", ".", "%20"]) {
    it(`DELETE /volumes/prod-db${tail} is denied by the rule`, async () => {
      const result = await explainRequest({
        policyYaml,
        method: "DELETE",
        url: `https://api.storage.example.com/volumes/prod-db${tail}`,
        headers: {},
        body: "",
        registry: registryWith(exampleDescriptors),
        inventory: createInventory([]),
        now: NOW,
      });
      if (!result.ok) throw new Error("policy should parse");
      expect([result.decision, result.ruleId]).toEqual(["deny", "no-prod-db"]);
    });
  }
});
