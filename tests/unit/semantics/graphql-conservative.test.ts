import { describe, expect, it } from "vitest";
import { decide } from "@/lib/policy/decide";
import { normalizePolicy, policySchema } from "@/lib/policy/schema";
import { compilePolicy } from "@/lib/policy/compiled";
import { classify } from "@/lib/semantics/classify";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import type { Classification } from "@/lib/semantics/types";
import { canonical, classifyRequest, json, RAILWAY } from "./support";

const SHOP = "https://api.shop.example.com/graphql";
const readOnly = compilePolicy(normalizePolicy(policySchema.parse({ rules: [{ service: "*", effects: ["read"] }] })));

/** What a read-only policy does with the request: forwarded only if every action is a read. */
function verdict(result: Classification): string {
  if (!result.ok) return `rejected:${result.code}`;
  return decide(readOnly, result.actions, 0).decision;
}

describe("GraphQL: a mutation is at least a write whatever its fields", () => {
  const mutations = [
    "mutation { __typename }",
    "mutation { __schema { types { name } } }",
    'mutation { ... on Mutation { __typename } }',
    "mutation M { ...F } fragment F on Mutation { __typename }",
  ];
  for (const query of mutations) {
    it(`${query} does not pass a read-only policy`, () => {
      expect(verdict(classifyRequest("POST", SHOP, { body: json({ query }) }))).toBe("deny");
    });
  }
  it("a descriptor cannot make a mutation field a read", () => {
    const registry = registryWith([{ id: "g", hosts: ["g.test"], protocol: "graphql", graphql: { fields: [{ name: "touch", effect: "read" }] } }]);
    const result = classify(canonical("POST", "https://g.test/", { body: json({ query: "mutation { touch }" }) }), registry, createInventory());
    expect(result.ok && result.effect).toBe("write");
  });
});

describe("GraphQL: subscriptions are not reads unless a descriptor says so", () => {
  it("default: a write", () => {
    expect(verdict(classifyRequest("POST", SHOP, { body: json({ query: "subscription { orderPlaced { id } }" }) }))).toBe("deny");
  });
  it("a descriptor may declare its subscriptions reads", () => {
    const registry = registryWith([{ id: "g", hosts: ["g.test"], protocol: "graphql", graphql: { subscriptionEffect: "read" } }]);
    const result = classify(canonical("POST", "https://g.test/", { body: json({ query: "subscription { ticks }" }) }), registry, createInventory());
    expect(result.ok && result.effect).toBe("read");
  });
});

describe("GraphQL: mutations over GET are refused whatever the policy", () => {
  const documents = [
    'mutation { volumeDelete(volumeId: "vol_1") }',
    "mutation { __typename }",
    // The selected operation is a read; the document still carries a mutation a server may run.
    'query Q { me { id } } mutation M { volumeDelete(volumeId: "vol_1") }',
  ];
  for (const query of documents) {
    for (const method of ["GET", "HEAD"]) {
      it(`${method} ${query.slice(0, 40)}`, () => {
        const url = `${RAILWAY}?query=${encodeURIComponent(query)}${query.includes("query Q") ? "&operationName=Q" : ""}`;
        expect(verdict(classifyRequest(method, url))).toBe("rejected:graphql_mutation_over_get");
      });
    }
  }
  it("a persisted query over GET whose known text is a mutation is refused too", () => {
    const registry = registryWith([{ id: "g", hosts: ["g.test"], protocol: "graphql", graphql: { persistedQueries: { abc: "mutation { wipe }" } } }]);
    const url = `https://g.test/?extensions=${encodeURIComponent(json({ persistedQuery: { version: 1, sha256Hash: "abc" } }))}`;
    const result = classify(canonical("GET", url), registry, createInventory());
    expect(result.ok ? "ok" : result.code).toBe("graphql_mutation_over_get");
  });
  it("queries over GET still work", () => {
    expect(verdict(classifyRequest("GET", `${RAILWAY}?query=${encodeURIComponent("{ me { id } }")}`))).toBe("allow");
  });
});

describe("GraphQL: a document is judged by every operation in it", () => {
  const doc = 'query Read { me { id } } mutation Evil { volumeDelete(volumeId: "vol_123") }';
  it("a read selected with an unselected volumeDelete is not forwarded under a read-only policy", () => {
    expect(verdict(classifyRequest("POST", RAILWAY, { body: json({ query: doc, operationName: "Read" }) }))).toBe("deny");
  });
  it("the same through a batch, form encoding and application/graphql", () => {
    expect(verdict(classifyRequest("POST", RAILWAY, { body: json([{ query: doc, operationName: "Read" }]) }))).toBe("deny");
    const form = `query=${encodeURIComponent(doc)}&operationName=Read`;
    expect(verdict(classifyRequest("POST", RAILWAY, { body: form, contentType: "application/x-www-form-urlencoded" }))).toBe("deny");
  });
  it("an unselected operation hiding its mutation in a fragment is judged too", () => {
    const hidden = "query Read { me { id } } mutation Other { ...F } fragment F on Mutation { volumeDelete(volumeId: \"vol_123\") }";
    const result = classifyRequest("POST", RAILWAY, { body: json({ query: hidden, operationName: "Read" }) });
    expect(result.ok && result.actions.map((a) => [a.operation, a.effect])).toEqual([["me", "read"], ["volumeDelete", "irreversible"]]);
  });
  it("only reads in every operation: allowed", () => {
    const reads = "query A { me { id } } query B { projects { edges { node { id } } } }";
    expect(verdict(classifyRequest("POST", RAILWAY, { body: json({ query: reads, operationName: "A" }) }))).toBe("allow");
  });
});

describe("GraphQL: limits on aliases, depth and fields", () => {
  const aliases = (n: number) => `query { ${Array.from({ length: n }, (_, i) => `a${i}: me { id }`).join(" ")} }`;
  const deep = (n: number) => `query { ${"a { ".repeat(n)}id${" }".repeat(n)} }`;
  const wide = (n: number) => `query { me { ${Array.from({ length: n }, (_, i) => `f${i}`).join(" ")} } }`;

  it("too many aliases (the brute-force-in-one-request trick) are refused with the limit named", () => {
    const result = classifyRequest("POST", SHOP, { body: json({ query: aliases(31) }) });
    expect(result.ok ? "ok" : [result.code, result.reason]).toEqual(["graphql_too_many_aliases", expect.stringMatching(/31 aliases.*at most 30/)]);
    expect(classifyRequest("POST", SHOP, { body: json({ query: aliases(30) }) }).ok).toBe(true);
  });
  it("too deep is refused", () => {
    expect(verdict(classifyRequest("POST", SHOP, { body: json({ query: deep(16) }) }))).toBe("rejected:graphql_too_deep");
    expect(classifyRequest("POST", SHOP, { body: json({ query: deep(14) }) }).ok).toBe(true);
  });
  it("too many fields is refused", () => {
    expect(verdict(classifyRequest("POST", SHOP, { body: json({ query: wide(1000) }) }))).toBe("rejected:graphql_too_many_fields");
  });
  it("fragments count as often as they are spread, measured without expanding them", () => {
    // Each level doubles the work a server does; the document itself stays small.
    let query = "query { ...F0 } fragment F0 on Query { x: me { id } }";
    for (let i = 1; i <= 40; i++) query = query.replace("query { ...F" + (i - 1) + " }", `query { ...F${i} }`) + ` fragment F${i} on Query { ...F${i - 1} ...F${i - 1} }`;
    const started = performance.now();
    const result = classifyRequest("POST", SHOP, { body: json({ query }) });
    expect(result.ok ? "ok" : result.code).toBe("graphql_too_many_aliases");
    expect(performance.now() - started).toBeLessThan(1000);
  });
  it("limits apply to every operation of the document together", () => {
    const doc = `query A { ${Array.from({ length: 20 }, (_, i) => `a${i}: me { id }`).join(" ")} } query B { ${Array.from({ length: 20 }, (_, i) => `b${i}: me { id }`).join(" ")} }`;
    expect(verdict(classifyRequest("POST", SHOP, { body: json({ query: doc, operationName: "A" }) }))).toBe("rejected:graphql_too_many_aliases");
  });
  it("each service sets its own limits", () => {
    const registry = registryWith([{ id: "g", hosts: ["g.test"], protocol: "graphql", graphql: { limits: { maxAliases: 2, maxDepth: 3, maxFields: 10 } } }]);
    const run = (query: string) => {
      const r = classify(canonical("POST", "https://g.test/", { body: json({ query }) }), registry, createInventory());
      return r.ok ? "ok" : r.code;
    };
    expect(run("{ a: x b: x }")).toBe("ok");
    expect(run("{ a: x b: x c: x }")).toBe("graphql_too_many_aliases");
    expect(run("{ a { b { c { d } } } }")).toBe("graphql_too_deep");
  });
});
