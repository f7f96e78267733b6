import { beforeAll, describe, expect, it } from "vitest";
import { formReading, parseFormStrict, phpParameterName, queryParameterNames } from "@/lib/semantics/body";
import { classifyRequest } from "./support";
import { loadSqlParser } from "@/lib/semantics/sql";

// SQL is unparseable (irreversible) until the parser is loaded: every verdict here assumes it is.
beforeAll(async () => {
  await loadSqlParser();
});

const GH = "https://api.github.com";
const REF = `${GH}/repos/acme/app/git/refs/heads/main`;

const effectOf = (r: ReturnType<typeof classifyRequest>) => (r.ok ? r.effect : `refused ${r.code}`);

/**
 * Two ways a body or a URL said one thing to Bulkhead and another to a server: a POST without a
 * Content-Type, which Rack (Rails, Sinatra) parses as a form, and parameter names as PHP (and
 * Laravel) register them: cut at a NUL, leading spaces dropped, spaces and dots read as `_`.
 */
describe("a POST without a Content-Type is also read as the form Rack reads it as", () => {
  it("REST: a body condition carried in the form reading counts", () => {
    const body = JSON.stringify({ description: "x", z: "&private=false&" });
    expect(effectOf(classifyRequest("POST", `${GH}/repos/acme/app`, { body, contentType: null }))).toBe("irreversible");
    // Labelled JSON, Rack reads it as JSON only.
    expect(effectOf(classifyRequest("POST", `${GH}/repos/acme/app`, { body, contentType: "application/json" }))).toBe("write");
  });

  it("SQL over HTTP: a statement field in the form reading is refused as ambiguous", () => {
    const body = JSON.stringify({ query: "SELECT 1", x: "&query=DROP TABLE users&" });
    expect(effectOf(classifyRequest("POST", "https://sql.example.com/sql", { body, contentType: null }))).toBe("refused sql_ambiguous_request");
  });

  it("GraphQL: a GraphQL parameter in the form reading is refused as ambiguous", () => {
    const body = JSON.stringify({ query: "query{products{id}}", x: "&query=mutation{deleteProduct(id:1){id}}&" });
    expect(effectOf(classifyRequest("POST", "https://a.shop.example.com/graphql", { body, contentType: null }))).toBe("refused graphql_ambiguous_request");
    expect(effectOf(classifyRequest("POST", "https://a.shop.example.com/graphql", { body: JSON.stringify({ query: "query{products{id}}" }), contentType: null }))).toBe("read");
  });
});

describe("parameter names as PHP reads them", () => {
  it("phpParameterName", () => {
    expect(phpParameterName("force\0")).toBe("force");
    expect(phpParameterName(" query")).toBe("query");
    expect(phpParameterName("delete.data")).toBe("delete_data");
    expect(phpParameterName("delete data")).toBe("delete_data");
    expect(phpParameterName("a.b[c.d]")).toBe("a_b[c.d]");
    expect(phpParameterName("force")).toBeNull();
  });

  it("a form body: a condition or resource parameter sees the value under PHP's name, and a name given twice that way is refused", () => {
    const force = classifyRequest("PATCH", REF, { body: JSON.stringify({ sha: "a", x: "&force%00=true&" }), contentType: "application/x-www-form-urlencoded" });
    expect(effectOf(force)).toBe("irreversible");
    const read = formReading("delete.data=1&force%00=true");
    expect(read.ok && read.value).toMatchObject({ delete_data: "1", force: "true" });
    const twice = formReading("force=false&force%00=true");
    expect(twice.ok).toBe(false);
  });

  it("a form body's resource parameter under PHP's name is judged as the resource too", () => {
    const r = classifyRequest("POST", "https://api.storage.example.com/volumes/vol_stg/snapshots", { body: "id%00=vol_prod", contentType: "application/x-www-form-urlencoded" });
    expect(r.ok && r.actions.map((a) => a.resource)).toEqual(expect.arrayContaining(["vol_stg", "vol_prod"]));
  });

  it("GraphQL forms and URLs: a second query under PHP's reading is ambiguous, a lone one is judged", () => {
    const url = "https://a.shop.example.com/graphql";
    const form = classifyRequest("POST", url, { body: "query=query{products{id}}&query%00=mutation{deleteProduct(id:1){id}}", contentType: "application/x-www-form-urlencoded" });
    expect(effectOf(form)).toMatch(/^refused /);
    const spaced = classifyRequest("POST", url, { body: "query=query{products{id}}&%20query=mutation{deleteProduct(id:1){id}}", contentType: "application/x-www-form-urlencoded" });
    expect(effectOf(spaced)).toMatch(/^refused /);
    const lone = parseFormStrict("query%00=mutation{x}");
    expect(lone.ok && lone.fields.get("query")).toBe("mutation{x}");
    const get = classifyRequest("GET", `${url}?query=${encodeURIComponent("query{products{id}}")}&query%00=${encodeURIComponent('query{product(id:"secret"){price}}')}`);
    expect(effectOf(get)).toMatch(/^refused /);
  });

  it("query strings: a name is also listed as PHP reads it", () => {
    expect(queryParameterNames("disk.id=d_prod&disk%20id=x").map((n) => n.name)).toEqual(expect.arrayContaining(["disk.id", "disk_id", "disk id"]));
  });
});
