import { describe, expect, it } from "vitest";
import type { Classification, Effect } from "@/lib/semantics/types";
import { classifyRequest, json, RAILWAY } from "./support";

const SHOP = "https://api.shop.example.com/graphql";
const PRODUCTS_HASH = "eb675e8eacfec4bff985392c0584144960ae20536b1576d12760301f5af86cdd";

function ops(result: Classification): Array<[string, Effect]> {
  if (!result.ok) throw new Error(`${result.code}: ${result.reason}`);
  return result.actions.map((a) => [a.operation, a.effect]);
}
function code(result: Classification): string | null {
  return result.ok ? null : result.code;
}

describe("GraphQL: the operation the server will run", () => {
  const doc = 'query Safe { me { id } } mutation Evil { volumeDelete(volumeId: "vol_123") }';

  it("operationName selects the read: the unselected mutation is judged too (a server may ignore operationName)", () => {
    const result = classifyRequest("POST", RAILWAY, { body: json({ query: doc, operationName: "Safe" }) });
    expect(ops(result)).toEqual([["me", "read"], ["volumeDelete", "irreversible"]]);
    expect(result.ok && result.actions[1]?.detail?.["selected"]).toBe(false);
  });
  it("operationName selects the mutation: classified irreversible, the other operation too", () => {
    expect(ops(classifyRequest("POST", RAILWAY, { body: json({ query: doc, operationName: "Evil" }) }))).toEqual([["me", "read"], ["volumeDelete", "irreversible"]]);
  });
  it("several operations and no operationName: rejected as ambiguous", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: doc }) }))).toBe("graphql_ambiguous_operation");
  });
  it("unknown operationName: rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: doc, operationName: "Other" }) }))).toBe("graphql_unknown_operation");
  });
  it("anonymous operation next to a named one: rejected (invalid document)", () => {
    const q = '{ me { id } } mutation M { volumeDelete(volumeId: "v") }';
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: q, operationName: "M" }) }))).toBe("graphql_invalid_document");
  });
  it("duplicate operation names: rejected", () => {
    const q = 'query A { me { id } } mutation A { volumeDelete(volumeId: "v") }';
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: q, operationName: "A" }) }))).toBe("graphql_invalid_document");
  });
});

describe("GraphQL: fragments and aliases", () => {
  const cases: Array<{ name: string; query: string; expected: Array<[string, Effect]> }> = [
    {
      name: "fragment spread hiding a mutation field",
      query: 'mutation { ...F } fragment F on Mutation { volumeDelete(volumeId: "vol_123") }',
      expected: [["volumeDelete", "irreversible"]],
    },
    {
      name: "nested fragments",
      query: 'mutation { ...A } fragment A on Mutation { ...B } fragment B on Mutation { projectDelete(id: "p") }',
      expected: [["projectDelete", "irreversible"]],
    },
    {
      name: "inline fragment at the root",
      query: 'mutation { ... on Mutation { environmentDelete(id: "e") } }',
      expected: [["environmentDelete", "irreversible"]],
    },
    {
      name: "inline fragment with @skip is still counted",
      query: 'mutation { ... @skip(if: true) { volumeDelete(volumeId: "v") } }',
      expected: [["volumeDelete", "irreversible"]],
    },
    {
      name: "aliases resolved to field names",
      query: 'mutation { read: volumeDelete(volumeId: "a") me: serviceDelete(id: "b") }',
      expected: [["volumeDelete", "irreversible"], ["serviceDelete", "irreversible"]],
    },
    {
      name: "every top-level mutation field is an action",
      query: 'mutation { variableUpsert(input: {name: "A"}) volumeDelete(volumeId: "v") }',
      expected: [["variableUpsert", "write"], ["volumeDelete", "irreversible"]],
    },
    {
      name: "a mutation is at least a write whatever its fields (__typename included)",
      query: "mutation { __typename }",
      expected: [["__typename", "write"]],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(ops(classifyRequest("POST", RAILWAY, { body: json({ query: c.query }) }))).toEqual(c.expected);
    });
  }
  it("fragment cycles are rejected", () => {
    const q = "mutation { ...A } fragment A on Mutation { ...B } fragment B on Mutation { ...A }";
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: q }) }))).toBe("graphql_invalid_document");
  });
  // Validation, measuring and root expansion recursed once per fragment of a chain: a few
  // thousand fragments each spreading the next (inside the token limit) cost superlinear time,
  // and a few more overflowed the stack. The chain is measured first, without recursion.
  const chain = (n: number, used = true) =>
    `${used ? "query { ...F0 } " : "query { me { id } } "}${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${i + 1} }`).join(" ")} fragment F${n} on Query { me { id } }`;
  it("a long chain of fragment spreads is refused as too deep, quickly (used or not)", () => {
    for (const [n, used] of [[3000, true], [5000, true], [5000, false]] as const) {
      const started = performance.now();
      const result = classifyRequest("POST", RAILWAY, { body: json({ query: chain(n, used) }) });
      expect(code(result), `${n} ${used}`).toBe("graphql_too_deep");
      expect(result.ok ? "" : result.reason).toMatch(/fragments spread each other/);
      expect(performance.now() - started).toBeLessThan(1000);
    }
  });
  it("fragments spreading each other 50 levels deep are classified (the control)", () => {
    expect(ops(classifyRequest("POST", RAILWAY, { body: json({ query: chain(50) }) }))).toEqual([["me", "read"]]);
  });
  it("unknown fragments are rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: "mutation { ...Nope }" }) }))).toBe("graphql_invalid_document");
  });
  it("duplicate arguments (which one does the server use?) are rejected", () => {
    const q = 'mutation { volumeDelete(volumeId: "vol_stg", volumeId: "vol_123") }';
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: q }) }))).toBe("graphql_invalid_document");
  });
  it("parse errors are rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: "mutation { volumeDelete(" }) }))).toBe("graphql_parse_error");
  });
  it("type definitions in the document are rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: "type T { a: Int } { me { id } }" }) }))).toBe("graphql_invalid_document");
  });
});

describe("GraphQL: every body encoding", () => {
  const mutation = 'mutation { volumeDelete(volumeId: "vol_123") }';
  it("batched array mixing a read and a delete: both classified", () => {
    const body = json([{ query: "{ me { id } }" }, { query: mutation }]);
    const result = classifyRequest("POST", RAILWAY, { body });
    expect(ops(result)).toEqual([["me", "read"], ["volumeDelete", "irreversible"]]);
    expect(result.ok && result.effect).toBe("irreversible");
    expect(result.ok && result.actions[1]?.detail?.["batchIndex"]).toBe(1);
  });
  it("empty batch is rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: "[]" }))).toBe("graphql_invalid_request");
  });
  it("mutation over GET (?query=) is refused whatever the policy", () => {
    const url = `${RAILWAY}?query=${encodeURIComponent(mutation)}`;
    expect(code(classifyRequest("GET", url))).toBe("graphql_mutation_over_get");
  });
  it("GET with operationName and variables", () => {
    const q = "query A($v: String!) { volume(id: $v) { id } } query B { me { id } }";
    const url = `${RAILWAY}?query=${encodeURIComponent(q)}&operationName=A&variables=${encodeURIComponent(json({ v: "vol_123" }))}`;
    const result = classifyRequest("GET", url);
    expect(ops(result)).toEqual([["volume", "read"], ["me", "read"]]);
    expect(result.ok && result.actions[0]?.resource).toBe("vol_123");
  });
  it("GET with duplicate query parameters is ambiguous", () => {
    const url = `${RAILWAY}?query=${encodeURIComponent("{ me { id } }")}&query=${encodeURIComponent(mutation)}`;
    expect(code(classifyRequest("GET", url))).toBe("ambiguous_parameter");
  });
  it("a GraphQL parameter after a ';' in the query string is ambiguous (Rack 2 and old Django split there)", () => {
    const read = encodeURIComponent("{ me { id } }");
    expect(code(classifyRequest("GET", `${RAILWAY}?query=${read}&a=1;query=${encodeURIComponent(mutation)}`))).toBe("graphql_ambiguous_request");
    expect(code(classifyRequest("GET", `${RAILWAY}?query=${read}&a=1;%71uery=x`))).toBe("graphql_ambiguous_request");
    expect(code(classifyRequest("POST", `${RAILWAY}?a=1;Query=${encodeURIComponent(mutation)}`, { body: json({ query: "{ me { id } }" }) }))).toBe("graphql_ambiguous_request");
    // A ';' that names no GraphQL parameter is only data.
    expect(ops(classifyRequest("GET", `${RAILWAY}?query=${read}&a=1;b=2`))).toEqual([["me", "read"]]);
  });
  it("a GraphQL parameter after a ';' in a form body is ambiguous (old Django splits form bodies there, and its QueryDict keeps the last query)", () => {
    const form = "application/x-www-form-urlencoded";
    const read = encodeURIComponent("{ me { id } }");
    expect(code(classifyRequest("POST", RAILWAY, { body: `query=${read}&a=1;query=${encodeURIComponent(mutation)}`, contentType: form }))).toBe("graphql_ambiguous_request");
    expect(code(classifyRequest("POST", RAILWAY, { body: `query=${read}&a=1;+%71uery=x`, contentType: form }))).toBe("graphql_ambiguous_request");
    expect(code(classifyRequest("POST", RAILWAY, { body: `a=1;OperationName=Evil&query=${read}`, contentType: form }))).toBe("graphql_ambiguous_request");
    // A ';' that names no GraphQL parameter is only data.
    expect(ops(classifyRequest("POST", RAILWAY, { body: `query=${read}&a=1;b=2`, contentType: form }))).toEqual([["me", "read"]]);
  });
  it("application/graphql body", () => {
    expect(ops(classifyRequest("POST", RAILWAY, { body: mutation, contentType: "application/graphql" }))).toEqual([["volumeDelete", "irreversible"]]);
  });
  it("application/x-www-form-urlencoded body", () => {
    const body = `query=${encodeURIComponent(mutation)}`;
    expect(ops(classifyRequest("POST", RAILWAY, { body, contentType: "application/x-www-form-urlencoded" }))).toEqual([["volumeDelete", "irreversible"]]);
  });
  it("form body with '+' for spaces", () => {
    const body = "query=mutation+%7B+volumeDelete(volumeId:+%22vol_123%22)+%7D";
    expect(ops(classifyRequest("POST", RAILWAY, { body, contentType: "application/x-www-form-urlencoded" }))).toEqual([["volumeDelete", "irreversible"]]);
  });
  it("JSON body without Content-Type is read as JSON", () => {
    expect(ops(classifyRequest("POST", RAILWAY, { body: json({ query: mutation }), contentType: null }))).toEqual([["volumeDelete", "irreversible"]]);
  });
  it("application/json with charset=utf-8", () => {
    expect(ops(classifyRequest("POST", RAILWAY, { body: json({ query: mutation }), contentType: "application/json; charset=UTF-8" }))).toEqual([["volumeDelete", "irreversible"]]);
  });
  it("a POST that also carries ?query= is ambiguous (servers disagree on precedence)", () => {
    const url = `${RAILWAY}?query=${encodeURIComponent("{ me { id } }")}`;
    expect(code(classifyRequest("POST", url, { body: json({ query: mutation }) }))).toBe("graphql_ambiguous_request");
  });
  it("duplicate JSON keys are rejected (first-wins vs last-wins parsers)", () => {
    const body = `{"query": "{ me { id } }", "query": ${JSON.stringify(mutation)}}`;
    expect(code(classifyRequest("POST", RAILWAY, { body }))).toBe("invalid_json");
  });
  it("non-UTF-8 charset is rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: mutation }), contentType: "application/json; charset=utf-16" }))).toBe("unsupported_charset");
  });
  it("compressed bodies are rejected", () => {
    const result = classifyRequest("POST", RAILWAY, { body: json({ query: mutation }), headers: { "content-encoding": "gzip" } });
    expect(code(result)).toBe("unsupported_content_encoding");
  });
  it("text/plain is not inspected: rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: mutation }), contentType: "text/plain" }))).toBe("unsupported_content_type");
  });
  it("multipart uploads are rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: "--x", contentType: "multipart/form-data; boundary=x" }))).toBe("unsupported_content_type");
  });
  it("invalid JSON is rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: "{query:" }))).toBe("invalid_json");
  });
  it("variables that are not an object are rejected", () => {
    expect(code(classifyRequest("POST", RAILWAY, { body: json({ query: "{ me { id } }", variables: [1] }) }))).toBe("graphql_invalid_request");
  });
  it("CORS preflight is a read", () => {
    expect(ops(classifyRequest("OPTIONS", RAILWAY))).toEqual([["OPTIONS", "read"]]);
  });
  it("an OPTIONS request with GraphQL parameters in its URL is judged by them, as a GET is", () => {
    expect(ops(classifyRequest("OPTIONS", `${RAILWAY}?query=${encodeURIComponent("{ me { id } }")}`))).toEqual([["me", "read"]]);
    expect(ops(classifyRequest("OPTIONS", `${RAILWAY}?query=${encodeURIComponent(mutation)}`))).toEqual([["volumeDelete", "irreversible"]]);
  });
  it("GET without a query is rejected", () => {
    expect(code(classifyRequest("GET", RAILWAY))).toBe("graphql_missing_query");
  });
});

describe("GraphQL: persisted queries", () => {
  const persisted = (hash: string) => ({ extensions: { persistedQuery: { version: 1, sha256Hash: hash } } });
  it("known hash without query text: classified from the descriptor's map", () => {
    expect(ops(classifyRequest("POST", SHOP, { body: json(persisted(PRODUCTS_HASH)) }))).toEqual([["products", "read"]]);
  });
  it("unknown hash without query text: rejected", () => {
    expect(code(classifyRequest("POST", SHOP, { body: json(persisted("0".repeat(64))) }))).toBe("graphql_unknown_persisted_query");
  });
  it("unknown hash over GET: rejected", () => {
    const url = `${SHOP}?extensions=${encodeURIComponent(json(persisted("f".repeat(64)).extensions))}`;
    expect(code(classifyRequest("GET", url))).toBe("graphql_unknown_persisted_query");
  });
  it("hash with query text (APQ registration): the text is classified", () => {
    const body = json({ query: 'mutation { deleteProduct(id: "1") }', ...persisted("a".repeat(64)) });
    expect(ops(classifyRequest("POST", SHOP, { body }))).toEqual([["deleteProduct", "destructive"]]);
  });
  it("known hash with different text: both documents are classified", () => {
    const body = json({ query: 'mutation { deleteProduct(id: "1") }', ...persisted(PRODUCTS_HASH) });
    expect(ops(classifyRequest("POST", SHOP, { body }))).toEqual([["deleteProduct", "destructive"], ["products", "read"]]);
  });
  it("unknown documentId: rejected even with query text", () => {
    const body = json({ query: "{ products { id } }", documentId: "abc" });
    expect(code(classifyRequest("POST", SHOP, { body }))).toBe("graphql_unknown_persisted_query");
  });
});

describe("generic GraphQL service", () => {
  const cases: Array<{ name: string; query: string; expected: Array<[string, Effect]> }> = [
    { name: "query is read", query: '{ product(id: "1") { name } }', expected: [["product", "read"]] },
    { name: "mutation is write", query: 'mutation { updateProduct(id: "1", name: "x") { id } }', expected: [["updateProduct", "write"]] },
    {
      name: "delete/destroy/remove/drop/purge/truncate/wipe mutations are destructive",
      query: "mutation { deleteProduct(id: 1) destroyCart removeItem dropIndex purgeCache truncateLog wipe_data }",
      expected: [
        ["deleteProduct", "destructive"], ["destroyCart", "destructive"], ["removeItem", "destructive"], ["dropIndex", "destructive"],
        ["purgeCache", "destructive"], ["truncateLog", "destructive"], ["wipe_data", "destructive"],
      ],
    },
    { name: "field override from the descriptor", query: 'mutation { archiveProduct(id: "1") }', expected: [["archiveProduct", "destructive"]] },
    { name: "subscriptions are writes unless the descriptor says otherwise", query: "subscription { orderPlaced { id } }", expected: [["orderPlaced", "write"]] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = classifyRequest("POST", SHOP, { body: json({ query: c.query }) });
      expect(ops(result)).toEqual(c.expected);
      expect(result.ok && result.service).toBe("shop-graphql");
    });
  }
  it("wildcard host *.shop.example.com matches a subdomain; the product id is the resource", () => {
    const result = classifyRequest("POST", "https://eu.api.shop.example.com/graphql", { body: json({ query: 'mutation { deleteProduct(productId: "p9") }' }) });
    expect(result.ok && result.actions[0]?.resource).toBe("p9");
  });
});

describe("GraphQL: a list argument names every resource in it", () => {
  // The server acts on every element of a list argument; judging the first alone let a field a
  // policy allows on one resource act on another beside it.
  const resources = (result: Classification) => {
    if (!result.ok) throw new Error(`${result.code}: ${result.reason}`);
    return result.actions.map((a) => [a.operation, a.resource, a.environment]);
  };
  it("a descriptor's resource argument given as a list: one action per element, each in its environment", () => {
    const result = classifyRequest("POST", RAILWAY, { body: json({ query: 'mutation { volumeInstanceBackupBatchDelete(volumeInstanceId: ["vol_stg", "vol_123"]) }' }) });
    expect(resources(result)).toEqual([
      ["volumeInstanceBackupBatchDelete", "vol_stg", "staging"],
      ["volumeInstanceBackupBatchDelete", "vol_123", "production"],
    ]);
  });
  it("the same list passed as a variable", () => {
    const result = classifyRequest("POST", RAILWAY, {
      body: json({ query: "mutation($v: [String!]!) { volumeDelete(volumeId: $v) }", variables: { v: ["vol_stg", "vol_stg", "vol_123"] } }),
    });
    expect(resources(result)).toEqual([
      ["volumeDelete", "vol_stg", "staging"],
      ["volumeDelete", "vol_123", "production"],
    ]);
  });
  it("a generic service's resource argument as a list", () => {
    const result = classifyRequest("POST", SHOP, { body: json({ query: 'mutation { deleteProduct(id: ["safe", "prod"]) }' }) });
    expect(resources(result).map(([, r]) => r)).toEqual(["safe", "prod"]);
  });
  it("a list of input objects: each element's identifier", () => {
    const result = classifyRequest("POST", SHOP, { body: json({ query: 'mutation { deleteProducts(input: [{productId: "safe"}, {productId: "prod"}]) }' }) });
    expect(resources(result).map(([, r]) => r)).toEqual(["safe", "prod"]);
  });
  it("only the first action carries the arguments (a long list costs n actions, not n times n)", () => {
    const ids = Array.from({ length: 300 }, (_, i) => `p${i}`);
    const result = classifyRequest("POST", SHOP, { body: json({ query: "mutation($i: [ID!]!) { deleteProduct(id: $i) }", variables: { i: ids } }) });
    if (!result.ok) throw new Error(result.reason);
    expect(result.actions.map((a) => a.resource)).toEqual(ids);
    expect(result.actions.filter((a) => a.detail?.["arguments"] !== undefined).length).toBe(1);
  });
  it("one identifier stays one action (the control)", () => {
    const result = classifyRequest("POST", SHOP, { body: json({ query: 'mutation { deleteProduct(id: ["only"]) }' }) });
    expect(resources(result).map(([, r]) => r)).toEqual(["only"]);
  });
});

describe("GraphQL: an identifier given as an integer beyond 2^53", () => {
  // graphql-js and JSON.parse round 9007199254740993 to 9007199254740992; an ID argument on the
  // server keeps the literal's digits.
  it("is refused, as a literal and as a variable; the same digits as a string are the resource", () => {
    const literal = classifyRequest("POST", RAILWAY, { body: json({ query: "mutation { volumeDelete(volumeId: 9007199254740993) }" }) });
    expect(literal.ok ? literal.actions.map((a) => a.resource) : literal.code).toBe("unsafe_integer");
    const variable = classifyRequest("POST", SHOP, { body: '{"query":"mutation($i: ID!) { deleteProduct(id: $i) }","variables":{"i":9007199254740993}}' });
    expect(variable.ok ? variable.actions.map((a) => a.resource) : variable.code).toBe("unsafe_integer");
    const nested = classifyRequest("POST", SHOP, { body: json({ query: "mutation { updateProduct(input: { productIds: [1, 12345678901234567890] }) }" }) });
    expect(nested.ok ? nested.actions.map((a) => a.resource) : nested.code).toBe("unsafe_integer");
    const exact = classifyRequest("POST", RAILWAY, { body: json({ query: 'mutation { volumeDelete(volumeId: "9007199254740993") }' }) });
    expect(exact.ok && exact.actions.map((a) => a.resource)).toEqual(["9007199254740993"]);
  });
});

describe("GraphQL: an identifier with leading zeros or a sign", () => {
  // A resolver that parses the ID as a number (Number(id), parseInt) acts on 42 for "0042".
  it("names the number too; a plain one stays one resource (the control)", () => {
    const padded = classifyRequest("POST", SHOP, { body: json({ query: 'mutation { deleteProduct(id: "0042") }' }) });
    expect(padded.ok && padded.actions.map((a) => a.resource)).toEqual(["0042", "42"]);
    const plain = classifyRequest("POST", SHOP, { body: json({ query: 'mutation { deleteProduct(id: "42") }' }) });
    expect(plain.ok && plain.actions.map((a) => a.resource)).toEqual(["42"]);
  });
});
