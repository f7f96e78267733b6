import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Effect } from "@/lib/semantics/types";
import { restConfigSchema } from "@/lib/semantics/descriptors/schema";
import { classifyRest } from "@/lib/semantics/rest";
import { canonical, classifyRequest, json } from "./support";

interface Case {
  name: string;
  method: string;
  url: string;
  body?: unknown;
  headers?: Record<string, string>;
  operation: string;
  effect: Effect;
  resource: string;
  environment?: string;
}

const GH = "https://api.github.com";

const github: Case[] = [
  { name: "DELETE /repos/{o}/{r} is irreversible", method: "DELETE", url: `${GH}/repos/acme/app`, operation: "repos.delete", effect: "irreversible", resource: "acme/app", environment: "production" },
  { name: "owner/repo are case-insensitive", method: "DELETE", url: `${GH}/repos/ACME/App`, operation: "repos.delete", effect: "irreversible", resource: "acme/app", environment: "production" },
  { name: "literal segments are case-insensitive too", method: "DELETE", url: `${GH}/REPOS/acme/app`, operation: "repos.delete", effect: "irreversible", resource: "acme/app" },
  { name: "matrix parameters do not change the repository", method: "DELETE", url: `${GH}/repos/acme/app;x=1`, operation: "repos.delete", effect: "irreversible", resource: "acme/app" },
  { name: "escaped matrix parameters (%3B, a ; once a front server decodes it) neither", method: "DELETE", url: `${GH}/repos/acme/app%3Bx=1`, operation: "repos.delete", effect: "irreversible", resource: "acme/app" },
  { name: "force-update of a ref is irreversible", method: "PATCH", url: `${GH}/repos/acme/app/git/refs/heads/main`, body: { sha: "abc", force: true }, operation: "git.refs.forceUpdate", effect: "irreversible", resource: "acme/app" },
  { name: "force given as a string still counts", method: "PATCH", url: `${GH}/repos/acme/app/git/refs/heads/main`, body: { sha: "abc", force: "true" }, operation: "git.refs.forceUpdate", effect: "irreversible", resource: "acme/app" },
  { name: "non-forced ref update is a write", method: "PATCH", url: `${GH}/repos/acme/app/git/refs/heads/main`, body: { sha: "abc", force: false }, operation: "git.refs.update", effect: "write", resource: "acme/app" },
  { name: "ref update without force is a write", method: "PATCH", url: `${GH}/repos/acme/app/git/refs/heads/main`, body: { sha: "abc" }, operation: "git.refs.update", effect: "write", resource: "acme/app" },
  { name: "DELETE of a ref is destructive", method: "DELETE", url: `${GH}/repos/acme/app/git/refs/heads/feature/x`, operation: "git.refs.delete", effect: "destructive", resource: "acme/app" },
  { name: "making a repository public is irreversible", method: "PATCH", url: `${GH}/repos/acme/app`, body: { visibility: "public" }, operation: "repos.update", effect: "irreversible", resource: "acme/app" },
  { name: "private: false is the same", method: "PATCH", url: `${GH}/repos/acme/app`, body: { private: false }, operation: "repos.update", effect: "irreversible", resource: "acme/app" },
  { name: "renaming a repository is a write", method: "PATCH", url: `${GH}/repos/acme/app`, body: { description: "x" }, operation: "repos.update", effect: "write", resource: "acme/app" },
  { name: "issue list is a read", method: "GET", url: `${GH}/repos/acme/app/issues?state=open`, operation: "issues.list", effect: "read", resource: "acme/app" },
  { name: "issue read", method: "GET", url: `${GH}/repos/acme/app/issues/12`, operation: "issues.get", effect: "read", resource: "acme/app" },
  { name: "PR read", method: "GET", url: `${GH}/repos/acme/app/pulls/3`, operation: "pulls.get", effect: "read", resource: "acme/app" },
  { name: "HEAD is judged like GET under its own operation", method: "HEAD", url: `${GH}/repos/acme/app/pulls/3`, operation: "HEAD pulls.get", effect: "read", resource: "acme/app" },
  { name: "issue creation is a write", method: "POST", url: `${GH}/repos/acme/app/issues`, body: { title: "x" }, operation: "issues.create", effect: "write", resource: "acme/app" },
  { name: "other repository paths: effect by method", method: "DELETE", url: `${GH}/repos/acme/app/labels/bug`, operation: "repos.other", effect: "destructive", resource: "acme/app" },
  { name: "sandbox repository is staging per the inventory", method: "GET", url: `${GH}/repos/acme/sandbox`, operation: "repos.get", effect: "read", resource: "acme/sandbox", environment: "staging" },
  { name: "paths outside any route: effect by method", method: "GET", url: `${GH}/user`, operation: "GET /user", effect: "read", resource: "/user" },
  { name: "X-HTTP-Method-Override: DELETE on a POST", method: "POST", url: `${GH}/repos/acme/app`, headers: { "x-http-method-override": "DELETE" }, operation: "repos.delete", effect: "irreversible", resource: "acme/app" },
  { name: "_method=DELETE in the query", method: "POST", url: `${GH}/repos/acme/app?_method=DELETE`, operation: "repos.delete", effect: "irreversible", resource: "acme/app" },
  // GitHub serves every repository endpoint under /repositories/{id} as well.
  { name: "DELETE /repositories/{id} is the irreversible repos.delete", method: "DELETE", url: `${GH}/repositories/1296269`, operation: "repos.delete", effect: "irreversible", resource: "1296269", environment: "production" },
  { name: "POST /repositories/{id}/transfer is irreversible", method: "POST", url: `${GH}/repositories/1296269/transfer`, operation: "repos.transfer", effect: "irreversible", resource: "1296269" },
  { name: "making a repository public by id is irreversible", method: "PATCH", url: `${GH}/Repositories/1296269/`, body: { private: false }, operation: "repos.update", effect: "irreversible", resource: "1296269" },
  { name: "force-update of a ref by repository id is irreversible", method: "PATCH", url: `${GH}/repositories/1296269/git/refs/heads/main`, body: { sha: "abc", force: true }, operation: "git.refs.forceUpdate", effect: "irreversible", resource: "1296269" },
  { name: "issues by repository id are a read", method: "GET", url: `${GH}/repositories/1296269/issues?page=2`, operation: "issues.list", effect: "read", resource: "1296269" },
  { name: "DELETE /organizations/{id} is the irreversible orgs.delete", method: "DELETE", url: `${GH}/organizations/11708465`, operation: "orgs.delete", effect: "irreversible", resource: "11708465" },
  { name: "other paths by repository id: effect by method", method: "DELETE", url: `${GH}/repositories/1296269/labels/bug`, operation: "repos.other", effect: "destructive", resource: "1296269" },
];

const generic: Case[] = [
  { name: "route override: DELETE /volumes/{id} irreversible", method: "DELETE", url: "https://api.storage.example.com/volumes/v1", operation: "volumes.delete", effect: "irreversible", resource: "v1" },
  { name: "route override: GET /volumes/{id} read", method: "GET", url: "https://api.storage.example.com/volumes/v1", operation: "volumes.get", effect: "read", resource: "v1" },
  { name: "GET read by default", method: "GET", url: "https://api.storage.example.com/buckets", operation: "GET /buckets", effect: "read", resource: "/buckets" },
  { name: "OPTIONS read", method: "OPTIONS", url: "https://api.storage.example.com/buckets", operation: "OPTIONS /buckets", effect: "read", resource: "/buckets" },
  { name: "POST write", method: "POST", url: "https://api.storage.example.com/buckets", body: {}, operation: "POST /buckets", effect: "write", resource: "/buckets" },
  { name: "PUT write", method: "PUT", url: "https://api.storage.example.com/buckets/b", body: {}, operation: "PUT /buckets/b", effect: "write", resource: "/buckets/b" },
  { name: "PATCH write", method: "PATCH", url: "https://api.storage.example.com/buckets/b", body: {}, operation: "PATCH /buckets/b", effect: "write", resource: "/buckets/b" },
  { name: "DELETE destructive", method: "DELETE", url: "https://api.storage.example.com/buckets/b", operation: "DELETE /buckets/b", effect: "destructive", resource: "/buckets/b" },
  { name: "unknown methods are destructive", method: "PURGE", url: "https://api.storage.example.com/buckets/b", operation: "PURGE /buckets/b", effect: "destructive", resource: "/buckets/b" },
  { name: "a route parameter is the resource as the server reads it: escapes decoded", method: "DELETE", url: "https://api.storage.example.com/volumes/prod%40db", operation: "volumes.delete", effect: "irreversible", resource: "prod@db" },
  { name: "an unmatched path is also named as a server that drops ;parameters serves it", method: "DELETE", url: "https://api.storage.example.com/admin;x=1/users", operation: "DELETE /admin;x=1/users", effect: "destructive", resource: "/admin;x=1/users" },
  { name: "encoded unreserved chars cannot dodge a route", method: "DELETE", url: "https://api.storage.example.com/%76olumes/v1", operation: "volumes.delete", effect: "irreversible", resource: "v1" },
  { name: "unknown host: service unknown, production, effect by method", method: "DELETE", url: "https://random.example.org/things/1", operation: "DELETE /things/1", effect: "destructive", resource: "random.example.org/things/1", environment: "production" },
];

describe("REST classification", () => {
  for (const c of [...github, ...generic]) {
    it(c.name, () => {
      const options = { ...(c.body !== undefined ? { body: json(c.body) } : {}), ...(c.headers ? { headers: c.headers } : {}) };
      const result = classifyRequest(c.method, c.url, options);
      if (!result.ok) throw new Error(`${result.code}: ${result.reason}`);
      const action = result.actions.find((a) => a.effect === result.effect) ?? result.actions[0];
      expect({ operation: action?.operation, effect: action?.effect, resource: action?.resource }).toEqual({
        operation: c.operation,
        effect: c.effect,
        resource: c.resource,
      });
      if (c.environment) expect(action?.environment).toBe(c.environment);
    });
  }

  it("a method override yields both the real and the overridden method", () => {
    const result = classifyRequest("POST", `${GH}/repos/acme/app/issues`, { body: json({}), headers: { "x-http-method-override": "GET" } });
    expect(result.ok && result.actions.map((a) => a.operation)).toEqual(["issues.create", "issues.list"]);
    expect(result.ok && result.effect).toBe("write");
  });
  it("_method in a form body is honoured", () => {
    // On /orgs/{org}: a POST to /repos/{o}/{r} is also GitHub's PATCH there, whose body condition
    // needs JSON, so a form body is refused (below).
    const result = classifyRequest("POST", `${GH}/orgs/acme`, { body: "_method=delete", contentType: "application/x-www-form-urlencoded" });
    expect(result.ok && result.effect).toBe("irreversible");
  });
  it("duplicate _method parameters are ambiguous", () => {
    const result = classifyRequest("POST", `${GH}/repos/acme/app?_method=GET&_method=DELETE`);
    expect(result.ok ? null : result.code).toBe("invalid_method_override");
  });
  it("an override header with two methods is rejected", () => {
    const result = classifyRequest("POST", `${GH}/repos/acme/app`, { headers: { "x-http-method-override": "GET, DELETE" } });
    expect(result.ok ? null : result.code).toBe("invalid_method_override");
  });
  it("a route with a body condition rejects a body that is not JSON", () => {
    const result = classifyRequest("PATCH", `${GH}/repos/acme/app/git/refs/heads/main`, { body: "force=true", contentType: "application/x-www-form-urlencoded" });
    expect(result.ok ? null : result.code).toBe("invalid_json");
  });
  it("duplicate JSON keys cannot hide force: true", () => {
    const result = classifyRequest("PATCH", `${GH}/repos/acme/app/git/refs/heads/main`, { body: '{"force": true, "force": false}' });
    expect(result.ok ? null : result.code).toBe("invalid_json");
  });
  it("GitHub GraphQL endpoint is classified as GraphQL", () => {
    const body = json({ query: 'mutation { updateRef(input: { refId: "r1", oid: "x", force: true }) { clientMutationId } }' });
    const result = classifyRequest("POST", `${GH}/graphql`, { body });
    expect(result.ok && result.actions.map((a) => [a.operation, a.effect, a.resource])).toEqual([["updateRef", "irreversible", "r1"]]);
  });
});

describe("REST route templates", () => {
  // Routes are parsed once and kept with the route; what they match must be exactly what the
  // template says, whichever order requests and descriptors come in.
  const config = restConfigSchema.parse({
    caseInsensitive: false,
    routes: [
      { method: ["get", "HEAD"], path: "/files/{path+}", operation: "files.get", resource: "{path}" },
      { method: "DELETE", path: "/a/{x+}/b", operation: "never.matches" },
      { method: "*", path: "/v/{id}", operation: "v.any", resource: "{id}" },
      { method: "PUT", path: "/Exact/{id}", operation: "exact.put", resource: "{id}" },
    ],
  });
  const classify = (method: string, path: string) => {
    const r = classifyRest(canonical(method, `https://svc.example.com${path}`), config);
    if (!r.ok) throw new Error(r.reason);
    return r.drafts.map((d) => `${d.operation} ${d.resource}`);
  };

  it("a greedy parameter takes the rest of the path, and only as the last part", () => {
    expect(classify("GET", "/files/a/b/c")).toEqual(["files.get a/b/c"]);
    expect(classify("HEAD", "/files/x")).toEqual(["files.get x"]);
    expect(classify("GET", "/files")).toEqual(["GET /files /files"]);
    expect(classify("DELETE", "/a/x/b")).toEqual(["DELETE /a/x/b /a/x/b"]);
  });

  it("a parameter needs a non-empty segment; '*' is any method; methods are matched upper-cased", () => {
    expect(classify("PATCH", "/v/7")).toEqual(["v.any 7"]);
    expect(classify("POST", "/v/")).toEqual(["POST /v/ /v/"]);
    expect(classify("GET", "/v/7/more")).toEqual(["GET /v/7/more /v/7/more"]);
  });

  it("literal segments compare exactly unless the service folds case, and matrix parameters are dropped", () => {
    expect(classify("PUT", "/Exact/1")).toEqual(["exact.put 1"]);
    // A case variant is also read as a case-insensitive server routes it: same effect, both named.
    expect(classify("PUT", "/exact/1")).toEqual(["exact.put 1", "PUT /exact/1 /exact/1"]);
    expect(classify("PUT", "/Exact;v=1/2;x")).toEqual(["exact.put 2"]);
    const folded = restConfigSchema.parse({ ...config, caseInsensitive: true });
    const r = classifyRest(canonical("PUT", "https://svc.example.com/EXACT/Id9"), folded);
    expect(r.ok && r.drafts.map((d) => `${d.operation} ${d.resource}`)).toEqual(["exact.put id9"]);
  });
});

describe("routes indexed by their first segment", () => {
  // A request is compared only with the routes whose first part can match its first segment
  // (and those starting with a parameter), in the descriptor's order. The same routes behind a
  // leading parameter (`/{zz}/…`) cannot be narrowed by any index: every route is compared, in
  // order, as a plain scan would. Both must judge every request alike.
  const FIRST = ["repos", "Repos", "REPOS", "users", "a", "ä", "{p}", "{q+}"];
  const REST = ["", "/{id}", "/{id}/x", "/x", "/X", "/{id}/{rest+}", "/x.json"];
  const METHOD_SETS: Array<string | string[]> = ["GET", "DELETE", "*", ["GET", "HEAD"], ["PUT", "PATCH"]];
  const EFFECTS = [undefined, "read", "write", "destructive", "irreversible"] as const;
  const route = fc.record({
    first: fc.constantFrom(...FIRST),
    rest: fc.constantFrom(...REST),
    method: fc.constantFrom(...METHOD_SETS),
    effect: fc.constantFrom(...EFFECTS),
    op: fc.nat(99),
  });
  const SEGMENTS = ["repos", "Repos", "rEpOs", "users", "a", "A", "ä", "Ä", "b", "x", "X", "7", "x.json", "repos;v=1", "repos."];
  const path = fc
    .tuple(fc.array(fc.constantFrom(...SEGMENTS), { minLength: 0, maxLength: 4 }), fc.boolean())
    .map(([s, slash]) => `/${s.join("/")}${slash && s.length > 0 ? "/" : ""}`);
  const norm = (drafts: ReadonlyArray<{ operation: string; effect: string; resource: string }>, prefix: string) =>
    drafts.map((d) => `${d.operation.replace(` ${prefix}`, " ")} ${d.effect} ${d.resource.startsWith(prefix) ? d.resource.slice(prefix.length - 1) : d.resource}`);

  it("narrowing by first segment judges as a scan of every route in order", () => {
    fc.assert(
      fc.property(fc.array(route, { minLength: 1, maxLength: 12 }), path, fc.constantFrom("GET", "HEAD", "DELETE", "PUT", "POST"), fc.boolean(), (routes, p, method, caseInsensitive) => {
        const spec = routes.map((r) => ({ method: r.method, path: `/${r.first}${r.rest}`, operation: `op${r.op}`, ...(r.effect ? { effect: r.effect } : {}), ...(r.rest.includes("{id}") ? { resource: "{id}" } : {}) }));
        // A greedy part must be last: such a route is kept only where the template allows it.
        const valid = spec.filter((r) => !/\{[a-z]+\+\}\//.test(r.path));
        if (valid.length === 0) return;
        const indexed = restConfigSchema.parse({ caseInsensitive, routes: valid });
        const scanned = restConfigSchema.parse({ caseInsensitive, routes: valid.map((r) => ({ ...r, path: `/{zz}${r.path}` })) });
        const a = classifyRest(canonical(method, `https://svc.example.com${p}`), indexed);
        const b = classifyRest(canonical(method, `https://svc.example.com/pp${p}`), scanned);
        expect(a.ok).toBe(b.ok);
        if (a.ok && b.ok) expect(norm(a.drafts, "/")).toEqual(norm(b.drafts, "/pp/"));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("unmatched paths under the spelling a server serves", () => {
  it("`;parameters` and trailing dots or spaces dropped: both spellings are actions", () => {
    for (const [url, served] of [
      ["https://api.storage.example.com/admin;x=1/users", "/admin/users"],
      ["https://api.storage.example.com/admin./users", "/admin/users"],
      ["https://api.storage.example.com/admin%20/users;v", "/admin/users"],
    ] as const) {
      const result = classifyRequest("DELETE", url);
      if (!result.ok) throw new Error(result.reason);
      expect(result.actions.map((a) => a.operation), url).toContain(`DELETE ${served}`);
    }
    const unknown = classifyRequest("DELETE", "https://random.example.org/admin;x/users");
    expect(unknown.ok && unknown.actions.map((a) => [a.operation, a.resource])).toEqual([
      ["DELETE /admin;x/users", "random.example.org/admin;x/users"],
      ["DELETE /admin/users", "random.example.org/admin/users"],
    ]);
  });
  it("a plain path is one action", () => {
    const result = classifyRequest("DELETE", "https://random.example.org/admin/users/");
    expect(result.ok && result.actions.length).toBe(1);
  });
});

describe("REST: a key of a body condition sent in the URL", () => {
  // Rails, PHP's $_REQUEST and Express apps that merge req.query read ?force=true as a request
  // parameter: the forced update ran while the JSON body alone was checked (a write).
  const refused: Array<[string, string, unknown]> = [
    ["PATCH", "/repos/acme/app/git/refs/heads/main?force=true", { sha: "abc" }],
    ["PATCH", "/repos/acme/app/git/refs/heads/main?FORCE=1", { sha: "abc" }],
    ["PATCH", "/repos/acme/app/git/refs/heads/main?%66orce=true", { sha: "abc" }],
    ["PATCH", "/repos/acme/app/git/refs/heads/main?a=1;force=true", { sha: "abc" }],
    ["PATCH", "/repos/acme/app/git/refs/heads/main?force[]=true", { sha: "abc" }],
    ["PATCH", "/repos/acme/app/git/refs/heads/main?force=false", { sha: "abc", force: true }],
    ["PATCH", "/repos/acme/app?visibility=public", { description: "x" }],
    ["PATCH", "/repos/acme/app?private=false", { description: "x" }],
    ["PATCH", "/repositories/1296269?private=0", { description: "x" }],
  ];
  for (const [method, path, body] of refused) {
    it(`${method} ${path} is refused`, () => {
      const result = classifyRequest(method, `${GH}${path}`, { body: json(body) });
      expect(result.ok ? result.actions.map((a) => [a.operation, a.effect]) : result.code).toBe("ambiguous_parameter");
    });
  }
  it("a nested condition key's top-level name in the URL is refused (input[replace], input.replace)", () => {
    const config = restConfigSchema.parse({ routes: [{ method: "POST", path: "/vars", operation: "vars.replace", effect: "destructive", when: { "input.replace": true } }] });
    for (const query of ["input[replace]=true", "input.replace=true", "Input=1"]) {
      const result = classifyRest(canonical("POST", `https://api.example.com/vars?${query}`, { body: json({ input: {} }) }), config);
      expect(result.ok ? result.drafts.map((d) => d.effect) : result.code, query).toBe("ambiguous_parameter");
    }
  });
  it("other URL parameters, and routes without a condition, are left alone (the control)", () => {
    const patch = classifyRequest("PATCH", `${GH}/repos/acme/app/git/refs/heads/main?per_page=1`, { body: json({ sha: "abc" }) });
    expect(patch.ok && patch.actions.map((a) => a.operation)).toEqual(["git.refs.update"]);
    const get = classifyRequest("GET", `${GH}/repos/acme/app?force=true`);
    expect(get.ok && get.actions.map((a) => a.operation)).toEqual(["repos.get"]);
  });
});

describe("REST: a boolean condition matches every value some server reads as that boolean", () => {
  // JavaScript and Python read any non-empty string as true (`if (body.force)`), Rails casts "no"
  // to true and "f" to false, Go's ParseBool reads "f" as false: the old comparison knew only
  // "true"/"1"/"yes"/"on" and their opposites.
  const ref = `${GH}/repos/acme/app/git/refs/heads/main`;
  // Ruby's `if params[:force]` is true for everything but nil and false: 0 and "" too.
  for (const force of ["false", "no", "off", "0", "False", " ", [], {}, [false], 0.5, -1, 0, ""]) {
    it(`force: ${JSON.stringify(force)} is the forced update`, () => {
      const result = classifyRequest("PATCH", ref, { body: json({ sha: "abc", force }) });
      expect(result.ok && result.actions.map((a) => a.operation)).toEqual(["git.refs.forceUpdate"]);
    });
  }
  for (const force of [false, null]) {
    it(`force: ${JSON.stringify(force)} is not (the control)`, () => {
      const result = classifyRequest("PATCH", ref, { body: json({ sha: "abc", force }) });
      expect(result.ok && result.actions.map((a) => a.operation)).toEqual(["git.refs.update"]);
    });
  }
  // Java's Boolean.parseBoolean reads every string but "true" (in any case) as false: "yes", "t",
  // "1", "on", " true" (untrimmed) and "private" too.
  for (const value of ["f", "F", "n", "No", " false ", "0.0", "-0", "0e1", null, [], {}, "t", "yes", "1", "on", " true", "true\n", "private", "maybe"]) {
    it(`private: ${JSON.stringify(value)} makes the repository public`, () => {
      const result = classifyRequest("PATCH", `${GH}/repos/acme/app`, { body: json({ private: value }) });
      expect(result.ok && result.actions.map((a) => [a.operation, a.effect])).toEqual([["repos.update", "irreversible"]]);
    });
  }
  for (const value of [true, 1, "true", "TRUE", "True", [true]]) {
    it(`private: ${JSON.stringify(value)} does not (the control)`, () => {
      const result = classifyRequest("PATCH", `${GH}/repos/acme/app`, { body: json({ private: value }) });
      expect(result.ok && result.actions.map((a) => [a.operation, a.effect])).toEqual([["repos.update", "write"]]);
    });
  }
});

describe("GitHub: POST is accepted wherever PATCH is", () => {
  // GitHub's API v3 documentation: "PATCH is a relatively new and uncommon HTTP verb, so resource
  // endpoints also accept POST requests". A POST with the PATCH's body was a plain write.
  const cases: Array<[string, unknown, string, Effect]> = [
    ["/repos/acme/app", { private: false }, "repos.update", "irreversible"],
    ["/repos/acme/app", { visibility: "public" }, "repos.update", "irreversible"],
    ["/repositories/1296269", { private: false }, "repos.update", "irreversible"],
    ["/repos/acme/app/git/refs/heads/main", { sha: "abc", force: true }, "git.refs.forceUpdate", "irreversible"],
    ["/repos/acme/app", { description: "x" }, "repos.update", "write"],
    ["/repos/acme/app/git/refs/heads/main", { sha: "abc" }, "git.refs.update", "write"],
    ["/repos/acme/app/git/refs", { ref: "refs/heads/x", sha: "abc" }, "git.refs.create", "write"],
  ];
  for (const [path, body, operation, effect] of cases) {
    it(`POST ${path} ${JSON.stringify(body)} is ${operation} (${effect})`, () => {
      const result = classifyRequest("POST", `${GH}${path}`, { body: json(body) });
      expect(result.ok && result.actions.map((a) => [a.operation, a.effect])).toEqual([[operation, effect]]);
    });
  }
  it("a form body there is refused: the condition cannot be read from it", () => {
    const result = classifyRequest("POST", `${GH}/repos/acme/app`, { body: "_method=delete", contentType: "application/x-www-form-urlencoded" });
    expect(result.ok ? result.effect : result.code).toBe("invalid_json");
  });
});

describe("REST: a JSON body labelled as a form is checked as a form too", () => {
  // Rails, Express and PHP parse a body by its Content-Type: `{"sha":"abc","x":"&force=true&"}`
  // is JSON without force to Bulkhead's JSON reading and the form field force=true to them.
  const FORM = "application/x-www-form-urlencoded";
  const ref = `${GH}/repos/acme/app/git/refs/heads/main`;
  const judged = (url: string, body: string, contentType = FORM) => {
    const result = classifyRequest("PATCH", url, { body, contentType });
    return result.ok ? result.actions.map((a) => [a.operation, a.effect]) : result.code;
  };
  it("a condition met by the form reading applies", () => {
    expect(judged(ref, '{"sha":"abc","x":"&force=true&"}')).toEqual([["git.refs.forceUpdate", "irreversible"]]);
    expect(judged(ref, '{"sha":"abc","x":";force=1;"}')).toEqual([["git.refs.forceUpdate", "irreversible"]]);
    expect(judged(`${GH}/repos/acme/app`, '{"description":"x","y":"&visibility=public&"}')).toEqual([["repos.update", "irreversible"]]);
    expect(judged(`${GH}/repos/acme/app`, '{"description":"x","y":"&private=0&"}')).toEqual([["repos.update", "irreversible"]]);
  });
  it("nested names read as Rails, PHP and qs nest them", () => {
    const config = restConfigSchema.parse({ routes: [{ method: "POST", path: "/vars", operation: "vars.replace", effect: "destructive", when: { "input.replace": true } }] });
    for (const body of ['{"a":"&input[replace]=1&"}', '{"a":"&input.replace=1&"}']) {
      const result = classifyRest(canonical("POST", "https://api.example.com/vars", { body, contentType: FORM }), config);
      expect(result.ok ? result.drafts.map((d) => d.effect) : result.code, body).toEqual(["destructive"]);
    }
  });
  it("a field given twice in the form reading is refused; another case of it too", () => {
    expect(judged(ref, '{"sha":"abc","x":"&force=0&force=1&"}')).toBe("ambiguous_parameter");
    expect(judged(ref, '{"sha":"abc","x":"&Force=1&"}')).toBe("json_key_variant");
  });
  it("JSON labelled as JSON is read as JSON only; a form label without such fields changes nothing (the controls)", () => {
    expect(judged(ref, '{"sha":"abc","x":"&force=true&"}', "application/json")).toEqual([["git.refs.update", "write"]]);
    expect(judged(ref, '{"sha":"abc","x":"100%"}')).toEqual([["git.refs.update", "write"]]);
    expect(judged(ref, '{"sha":"abc","force":true}')).toEqual([["git.refs.forceUpdate", "irreversible"]]);
  });
});

/**
 * A URL parameter named like the path parameter a route's resource is read from: Laravel's
 * `$request->id` reads the query before the route's `{id}`, so `DELETE /volumes/vol_stg?id=vol_123`
 * deletes vol_123 there while the rules were applied to vol_stg.
 */
describe("REST: the resource's path parameter named again in the URL", () => {
  const STORAGE = "https://api.storage.example.com";
  for (const query of ["id=vol_123", "ID=vol_123", "%69d=vol_123", "a=1;id=vol_123", "id[]=vol_123", "+id=vol_123"]) {
    it(`DELETE /volumes/vol_stg?${query} is refused`, () => {
      const result = classifyRequest("DELETE", `${STORAGE}/volumes/vol_stg?${query}`);
      expect(result.ok ? result.actions.map((a) => [a.operation, a.resource]) : result.code).toBe("ambiguous_parameter");
    });
  }
  it("GitHub: ?owner= or ?repo= beside /repos/{owner}/{repo} is refused", () => {
    for (const path of ["/repos/acme/sandbox?repo=app", "/repos/acme/sandbox?Owner=acme", "/repos/acme/sandbox/issues?repo=app"]) {
      const result = classifyRequest("DELETE", `${GH}${path}`);
      expect(result.ok ? result.actions.map((a) => [a.operation, a.resource]) : result.code, path).toBe("ambiguous_parameter");
    }
  });
  it("other URL parameters are left alone (the control)", () => {
    const result = classifyRequest("DELETE", `${STORAGE}/volumes/vol_stg?reason=cleanup&ids=1`);
    expect(result.ok && result.actions.map((a) => [a.operation, a.resource])).toEqual([["volumes.delete", "vol_stg"]]);
    const issues = classifyRequest("GET", `${GH}/repos/acme/app/issues?state=open&per_page=5`);
    expect(issues.ok && issues.actions.map((a) => a.operation)).toEqual(["issues.list"]);
  });
});

/**
 * A body that names the resource's path parameter again, with another value: Laravel's
 * `$request->id` reads the body before the route's `{id}`, so `DELETE /volumes/vol_stg` with
 * `{"id": "vol_123"}` deletes vol_123 there. Both resources are judged.
 */
describe("REST: the resource's path parameter named again in the body", () => {
  const STORAGE = "https://api.storage.example.com";
  const judgedWith = (method: string, path: string, body: string, type = "application/json") => {
    const result = classifyRequest(method, `${STORAGE}${path}`, { body, contentType: type });
    return result.ok ? result.actions.map((a) => [a.operation, a.effect, a.resource]) : result.code;
  };
  it("a JSON body's id beside the path's: both volumes are judged", () => {
    expect(judgedWith("DELETE", "/volumes/vol_stg", JSON.stringify({ id: "vol_123" }))).toEqual([
      ["volumes.delete", "irreversible", "vol_stg"],
      ["volumes.delete", "irreversible", "vol_123"],
    ]);
  });
  it("a form body's id, and a number, too", () => {
    expect(judgedWith("POST", "/volumes/vol_stg/snapshots", "id=vol_123&name=x", "application/x-www-form-urlencoded")).toEqual([
      ["volumes.snapshot", "write", "vol_stg"],
      ["volumes.snapshot", "write", "vol_123"],
    ]);
    expect(judgedWith("DELETE", "/volumes/vol_stg", JSON.stringify({ id: 123 }))).toEqual([
      ["volumes.delete", "irreversible", "vol_stg"],
      ["volumes.delete", "irreversible", "123"],
    ]);
  });
  it("the same id, another key, a non-scalar or no body adds nothing (the controls)", () => {
    for (const body of [JSON.stringify({ id: "vol_stg" }), JSON.stringify({ volume: "vol_123" }), JSON.stringify({ id: { $ne: null } }), JSON.stringify([{ id: "vol_123" }]), ""]) {
      expect(judgedWith("DELETE", "/volumes/vol_stg", body), body).toEqual([["volumes.delete", "irreversible", "vol_stg"]]);
    }
    expect(judgedWith("DELETE", "/volumes/vol_stg", "not json", "text/plain")).toEqual([["volumes.delete", "irreversible", "vol_stg"]]);
  });
  it("a body labelled JSON that does not parse is refused: what it names cannot be ruled out", () => {
    expect(judgedWith("DELETE", "/volumes/vol_stg", "not json")).toBe("invalid_json");
  });
  it("GitHub reads path parameters from the path only: generate's owner is the new repository's", () => {
    const result = classifyRequest("POST", `${GH}/repos/acme/template/generate`, { body: json({ owner: "mallory", name: "copy", private: true }) });
    expect(result.ok ? result.actions.map((a) => [a.operation, a.resource]) : result.code).toEqual([["repos.createUsingTemplate", "acme/template"]]);
  });
});
