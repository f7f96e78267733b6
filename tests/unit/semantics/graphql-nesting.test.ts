import { describe, expect, it } from "vitest";
import { graphqlConfigSchema } from "@/lib/semantics/descriptors/schema";
import { classifyDocument } from "@/lib/semantics/graphql";
import { classifyRequest, json, RAILWAY } from "./support";

const config = graphqlConfigSchema.parse({
  paths: ["/graphql"],
  resourceArgs: ["id", "productId", "repositoryId", "owner"],
  fields: [
    { name: "archiveProduct", effect: "destructive", resourceArg: "input.productId" },
    { name: "nukeShop", effect: "irreversible" },
  ],
});

const judged = (doc: string, variables: Record<string, unknown> = {}) => {
  const result = classifyDocument(doc, null, variables, config);
  return result.ok ? result.drafts.map((d) => [d.operation, d.effect, d.resource]) : result.code;
};
const keysOf = (doc: string) => {
  const result = classifyDocument(doc, null, {}, config);
  return result.ok ? result.drafts.flatMap((d) => d.keys) : result.code;
};

const nest = (depth: number, inner: string) => "{a: ".repeat(depth) + inner + "}".repeat(depth);

describe("GraphQL: identifiers nested deep in input objects are found, too deep is refused", () => {
  it("an id 6 input objects deep names the resource", () => {
    expect(judged(`mutation { updateProduct(input: ${nest(6, "{productId: \"p1\"}")}) { ok } }`)).toEqual([["updateProduct", "write", "p1"]]);
  });

  it("an id in lists nested 6 deep names the resource", () => {
    expect(judged('mutation { updateProduct(productId: [[[[[["p1"]]]]]]) { ok } }')).toEqual([["updateProduct", "write", "p1"]]);
  });

  it("a resourceArg reached through lists nested 6 deep names the resource", () => {
    expect(judged('mutation { archiveProduct(input: [[[[[[{productId: "p1"}]]]]]]) { ok } }')).toEqual([["archiveProduct", "destructive", "p1"]]);
  });

  it("an id in variables nested 20 deep names the resource", () => {
    let value: unknown = { productId: "p1" };
    for (let i = 0; i < 20; i++) value = { a: value };
    expect(judged("mutation($v: In!) { updateProduct(input: $v) { ok } }", { v: value })).toEqual([["updateProduct", "write", "p1"]]);
  });

  it("nesting beyond the limit is refused, not skipped", () => {
    expect(judged(`mutation { updateProduct(input: ${nest(170, "{productId: \"p1\"}")}) { ok } }`)).toBe("graphql_too_deep");
  });
});

describe("GraphQL: Go-style and case-variant identifier names", () => {
  for (const arg of ["repositoryID", "RepositoryId", "repositoryid"]) {
    it(`${arg} is the descriptor's repositoryId`, () => {
      expect(judged(`mutation { archiveRepository(${arg}: "r1") { ok } }`)).toEqual([["archiveRepository", "write", "r1"]]);
    });
  }

  it("userID, ownerID, repoIDs, user_ID and ID are identifiers (looked up in the inventory)", () => {
    expect(keysOf('mutation { grant(userID: "u1", ownerID: "o1", repoIDs: ["a", "b"], user_ID: "u2", ID: "x") { ok } }')).toEqual(expect.arrayContaining(["u1", "o1", "a", "b", "u2", "x"]));
  });

  it("a resourceArg that is not id-shaped (owner) names the resource", () => {
    expect(judged('mutation { transferThing(input: {owner: "acme"}) { ok } }')).toEqual([["transferThing", "write", "acme"]]);
  });

  it("a descriptor field's resourceArg spelled in another case is refused, not skipped", () => {
    const result = classifyRequest("POST", "https://api.github.com/graphql", { body: json({ query: 'mutation { updateRef(input: {refID: "R1", sha: "a", force: true}) { ref { id } } }' }) });
    expect(result.ok ? "ok" : result.code).toBe("json_key_variant");
  });

  it("valid and paid are not identifiers (the control)", () => {
    expect(keysOf('mutation { pay(paid: "x", valid: "y") { ok } }')).toEqual([]);
  });
});

describe("GraphQL: mutations grouped under a namespace field are judged", () => {
  it("mutation { admin { deleteProject(id: 1) } } deletes project 1", () => {
    expect(judged("mutation { admin { deleteProject(id: 1) { ok } } }")).toEqual([
      ["admin", "write", "-"],
      ["deleteProject", "destructive", "1"],
    ]);
  });

  it("through fragments and nested namespaces too", () => {
    expect(judged("mutation { admin { ...F } } fragment F on AdminMutation { projects { remove(id: \"p\") } }")).toEqual([
      ["admin", "write", "-"],
      ["remove", "destructive", "p"],
    ]);
  });

  it("a descriptor's field override applies inside a namespace (Railway volumeDelete)", () => {
    const result = classifyRequest("POST", RAILWAY, { body: json({ query: 'mutation { ops { volumeDelete(volumeId: "vol_123") } }' }) });
    expect(result.ok && result.actions.map((a) => [a.operation, a.effect, a.resource, a.environment])).toContainEqual(["volumeDelete", "irreversible", "vol_123", "production"]);
  });

  it("the selections of a mutation with arguments, or of a namespace's plain results, are not operations (the control)", () => {
    expect(judged('mutation { createProduct(input: {name: "x"}) { product { id name } } }')).toEqual([["createProduct", "write", "-"]]);
    expect(judged("mutation { logout { success } }")).toEqual([["logout", "write", "-"]]);
  });

  it("queries are not namespaces (the control)", () => {
    expect(judged("query { admin { project(id: 1) { name } } }")).toEqual([["admin", "read", "-"]]);
  });
});

describe("GraphQL: operations nested below a field with arguments, or in a query, are judged", () => {
  it("an irreversible field under a namespace that takes arguments is held like the root one", () => {
    expect(judged('mutation { admin(tenant: "t") { nukeShop } }')).toContainEqual(["nukeShop", "irreversible", "-"]);
    expect(judged('mutation { admin { tenant(id: "t") { nukeShop } } }')).toContainEqual(["nukeShop", "irreversible", "-"]);
  });

  it("a destructive field under a scoped namespace is judged on its own resource", () => {
    expect(judged('mutation { admin(tenant: "t") { deleteProduct(id: "p") { ok } } }')).toContainEqual(["deleteProduct", "destructive", "p"]);
    expect(judged('mutation { admin { tenant(id: "t") { deleteProduct(id: "p") { ok } } } }')).toContainEqual(["deleteProduct", "destructive", "p"]);
  });

  it("a write under a scoped namespace is judged on the resource it names, not only the namespace's", () => {
    expect(judged('mutation { tenant(id: "t") { updateProduct(productId: "p9") { ok } } }')).toEqual([
      ["tenant", "write", "t"],
      ["updateProduct", "write", "p9"],
    ]);
    expect(judged('mutation { tenant(id: "t") { updateProduct(input: {productId: "p9"}) { ok } } }')).toContainEqual(["updateProduct", "write", "p9"]);
  });

  it("through fragments and inline fragments below the root", () => {
    expect(judged('mutation { tenant(id: "t") { ...F } } fragment F on Tenant { ... on Tenant { nukeShop } }')).toContainEqual(["nukeShop", "irreversible", "-"]);
  });

  it("a field the descriptor declares acts wherever a query selects it", () => {
    expect(judged("{ admin { nukeShop } }")).toContainEqual(["nukeShop", "irreversible", "-"]);
    expect(judged('{ shop(id: "s") { ...F } } fragment F on Shop { nukeShop }')).toContainEqual(["nukeShop", "irreversible", "-"]);
    expect(judged('subscription { events { archiveProduct(input: {productId: "p1"}) { ok } } }')).toContainEqual(["archiveProduct", "destructive", "p1"]);
  });

  it("what a mutation returns stays part of it (the control)", () => {
    expect(judged('mutation { createProduct(input: {name: "x"}) { product { reviews(first: 5) { text author { name } } } } }')).toEqual([["createProduct", "write", "-"]]);
    expect(judged('query { shop(id: "s") { products(first: 10) { id name } } }')).toEqual([["shop", "read", "s"]]);
  });

  it("a large query's nested selections are walked without refusing it (over 500 below one field)", () => {
    const many = Array.from({ length: 600 }, (_, i) => `f${i}`).join(" ");
    expect(judged(`{ shop(id: "s") { ${many} } }`)).toEqual([["shop", "read", "s"]]);
  });
});
