/**
 * Spellings of a path that servers route together (trailing slash, case, `;parameters`, escapes
 * of non-ASCII case variants) must not move a request to a laxer classification: a declared
 * endpoint of another protocol is refused in every spelling but the declared one, and REST routes
 * are matched in the folded reading too, the stricter reading winning. The path forwarded stays
 * exactly what the agent sent.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { classify } from "@/lib/semantics/classify";
import { restConfigSchema } from "@/lib/semantics/descriptors/schema";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import { classifyRest } from "@/lib/semantics/rest";
import { canonical, classifyRequest, json } from "./support";
import { loadSqlParser } from "@/lib/semantics/sql";

// SQL is unparseable (irreversible) until the parser is loaded: every verdict here assumes it is.
beforeAll(async () => {
  await loadSqlParser();
});

const GH = "https://api.github.com";
const STORAGE = "https://api.storage.example.com";

/** A REST service with a GraphQL endpoint, like GitHub, but case-sensitive. */
const ops = registryWith([
  {
    id: "ops",
    hosts: ["ops.test"],
    protocol: "rest",
    graphql: { paths: ["/graphql"], fields: [{ name: "nukeAll", effect: "irreversible" }] },
    sql: { paths: ["/v1/sql"] },
  },
]);
const opsClassify = (method: string, path: string, body: string) => classify(canonical(method, `https://ops.test${path}`, { body }), ops, createInventory());
const NUKE = json({ query: "mutation { nukeAll }" });

/** Spellings of `/graphql` a folding server routes to it; the last ones rely on canonicalisation. */
const GRAPHQL_SPELLINGS = [
  "/graphql/",
  "/GraphQL",
  "/Graphql/",
  "/GRAPHQL",
  "/graphql;v=1",
  "/graphql;v=1/",
  "/graphql/;x",
  "/%47raphQL",
  "/graphq%6c/",
  "/%EF%BD%87%EF%BD%92%EF%BD%81%EF%BD%90%EF%BD%88%EF%BD%91%EF%BD%8C", // fullwidth, NFKC-folded
  // A format suffix (Rails routes these to /graphql).
  "/graphql.json",
  "/GraphQL.JSON/",
  "/graphql.xml;v=1",
];

describe("a protocol endpoint declared on a REST service, in every spelling", () => {
  it("the declared spelling is GraphQL and the irreversible mutation is found", () => {
    const r = opsClassify("POST", "/graphql", NUKE);
    expect(r.ok && r.actions.map((a) => [a.operation, a.effect])).toEqual([["nukeAll", "irreversible"]]);
  });
  for (const path of GRAPHQL_SPELLINGS) {
    it(`${path} is refused as a spelling of /graphql, never a REST write`, () => {
      for (const method of ["POST", "GET", "PUT"]) {
        const r = opsClassify(method, path, NUKE);
        expect(r.ok ? `${r.effect} ${r.actions[0]?.operation}` : r.code, `${method} ${path}`).toBe("endpoint_path_variant");
      }
    });
  }
  it("the refusal names the declared endpoint", () => {
    const r = opsClassify("POST", "/GraphQL/", NUKE);
    expect(!r.ok && r.reason).toMatch(/send the request to \/graphql exactly/);
  });
  it("SQL-over-HTTP paths are claimed the same way", () => {
    for (const path of ["/v1/sql/", "/V1/SQL", "/v1;a/sql"]) {
      const r = opsClassify("POST", path, json({ query: "DROP TABLE users" }));
      expect(r.ok ? r.effect : r.code, path).toBe("endpoint_path_variant");
    }
    const exact = opsClassify("POST", "/v1/sql", json({ query: "DROP TABLE users" }));
    expect(exact.ok && exact.effect).toBe("irreversible");
  });
  it("paths that only begin like the endpoint stay REST", () => {
    for (const path of ["/graphql/extra", "/graphqlx", "/api/graphql"]) {
      const r = opsClassify("POST", path, NUKE);
      expect(r.ok && r.actions[0]?.operation, path).toBe(`POST ${path}`);
    }
  });
  it("GitHub: POST /graphql/ with a forced updateRef is refused, /graphql is the irreversible updateRef", () => {
    const body = json({ query: 'mutation { updateRef(input: { refId: "r1", oid: "x", force: true }) { clientMutationId } }' });
    for (const path of ["/graphql/", "/GraphQL", "/graphql;v=1", "/Graphql/"]) {
      const r = classifyRequest("POST", `${GH}${path}`, { body });
      expect(r.ok ? `${r.effect} ${r.actions[0]?.operation}` : r.code, path).toBe("endpoint_path_variant");
    }
    const exact = classifyRequest("POST", `${GH}/graphql`, { body });
    expect(exact.ok && exact.actions.map((a) => [a.operation, a.effect])).toEqual([["updateRef", "irreversible"]]);
  });
});

describe("a protocol service's own endpoint, in every spelling", () => {
  it("MCP: spellings of /mcp are refused as variants, other paths as unknown endpoints", () => {
    const call = json({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "delete_volume", arguments: { volume_id: "v" } } });
    for (const path of ["/mcp/", "/MCP", "/mcp;s=1", "/Mcp/"]) {
      const r = classifyRequest("POST", `https://mcp.example.com${path}`, { body: call });
      expect(r.ok ? r.effect : r.code, path).toBe("endpoint_path_variant");
    }
    const other = classifyRequest("POST", "https://mcp.example.com/mcp/x", { body: call });
    expect(other.ok ? other.effect : other.code).toBe("unknown_endpoint");
  });
  it("GraphQL and SQL services likewise", () => {
    const g = classifyRequest("POST", "https://a.shop.example.com/GraphQL/", { body: json({ query: "mutation { deleteProduct(id: 1) }" }) });
    expect(g.ok ? g.effect : g.code).toBe("endpoint_path_variant");
    const s = classifyRequest("POST", "https://sql.example.com/SQL/", { body: json({ query: "DROP TABLE t" }) });
    expect(s.ok ? s.effect : s.code).toBe("endpoint_path_variant");
  });
});

interface RouteCase {
  method: string;
  url: string;
  operation: string;
  effect: string;
  resource: string;
}

const folded: RouteCase[] = [
  { method: "DELETE", url: `${STORAGE}/volumes/v1/`, operation: "volumes.delete", effect: "irreversible", resource: "v1" },
  { method: "DELETE", url: `${STORAGE}/Volumes/v1`, operation: "volumes.delete", effect: "irreversible", resource: "v1" },
  { method: "DELETE", url: `${STORAGE}/VOLUMES/v1`, operation: "volumes.delete", effect: "irreversible", resource: "v1" },
  { method: "DELETE", url: `${STORAGE}/volumes;jsessionid=1/v1`, operation: "volumes.delete", effect: "irreversible", resource: "v1" },
  { method: "DELETE", url: `${STORAGE}/VOLUMES;a=b/v1;c=d/`, operation: "volumes.delete", effect: "irreversible", resource: "v1" },
  { method: "DELETE", url: `${STORAGE}/volumes/v1/;x`, operation: "volumes.delete", effect: "irreversible", resource: "v1" },
  { method: "DELETE", url: `${STORAGE}/volume%C5%BF/v1`, operation: "volumes.delete", effect: "irreversible", resource: "v1" }, // ſ: .NET upper-cases it to S
  { method: "DELETE", url: `${STORAGE}/%76OLUMES/v1/`, operation: "volumes.delete", effect: "irreversible", resource: "v1" },
  { method: "POST", url: `${STORAGE}/Volumes/v1/Snapshots/`, operation: "volumes.snapshot", effect: "write", resource: "v1" },
  // Parameters capture what was sent (minus ;parameters): case is kept on a case-sensitive service.
  { method: "DELETE", url: `${STORAGE}/VOLUMES/Vol_AB/`, operation: "volumes.delete", effect: "irreversible", resource: "Vol_AB" },
  { method: "DELETE", url: `${GH}/repos/acme/app/`, operation: "repos.delete", effect: "irreversible", resource: "acme/app" },
  { method: "DELETE", url: `${GH}/Repos/ACME/App/`, operation: "repos.delete", effect: "irreversible", resource: "acme/app" },
  { method: "DELETE", url: `${GH}/repos/acme/app;x=1/`, operation: "repos.delete", effect: "irreversible", resource: "acme/app" },
  { method: "POST", url: `${GH}/repos/acme/app/transfer/`, operation: "repos.transfer", effect: "irreversible", resource: "acme/app" },
  { method: "POST", url: `${GH}/repos/acme/app/transfer;v=2`, operation: "repos.transfer", effect: "irreversible", resource: "acme/app" },
  { method: "DELETE", url: `${GH}/orgs/acme/`, operation: "orgs.delete", effect: "irreversible", resource: "acme" },
  { method: "PATCH", url: `${GH}/repos/acme/app/`, operation: "repos.update", effect: "irreversible", resource: "acme/app" },
];

describe("REST routes match the path as folding servers route it", () => {
  for (const c of folded) {
    it(`${c.method} ${c.url.replace(/^https:\/\/[^/]+/, "")} is ${c.operation} (${c.effect})`, () => {
      const body = c.method === "PATCH" ? json({ visibility: "public" }) : c.method === "POST" ? json({}) : undefined;
      const r = classifyRequest(c.method, c.url, body === undefined ? {} : { body });
      if (!r.ok) throw new Error(`${r.code}: ${r.reason}`);
      expect(r.effect).toBe(c.effect);
      expect(r.actions.map((a) => [a.operation, a.effect, a.resource])).toContainEqual([c.operation, c.effect, c.resource]);
    });
  }

  it("the forwarded path is not rewritten", () => {
    const req = canonical("DELETE", `${STORAGE}/VOLUMES;a=b/v1/`);
    expect(req.path).toBe("/VOLUMES;a=b/v1/");
  });

  it("when both readings have the same effect but name different operations, both are judged", () => {
    const r = classifyRequest("GET", `${GH}/repos/acme/app/`);
    expect(r.ok && r.actions.map((a) => a.operation).sort()).toEqual(["repos.get", "repos.other"]);
    expect(r.ok && r.effect).toBe("read");
  });

  it("the written reading wins when it is stricter than the folded one", () => {
    const config = restConfigSchema.parse({
      routes: [{ method: "DELETE", path: "/cache/{id}", operation: "cache.evict", effect: "write" }],
    });
    // `/cache/x/` is not the route as written: a strict server's DELETE of something else.
    const r = classifyRest(canonical("DELETE", "https://svc.test/cache/x/"), config);
    expect(r.ok && r.drafts.map((d) => [d.operation, d.effect])).toEqual([["DELETE /cache/x/", "destructive"]]);
  });

  it("routes a folding server cannot tell apart: the strictest is taken, whatever their order", () => {
    const config = restConfigSchema.parse({
      routes: [
        { method: "DELETE", path: "/Volumes/{id}", operation: "legacy.delete", effect: "write", resource: "{id}" },
        { method: "DELETE", path: "/volumes/{id}", operation: "volumes.delete", effect: "irreversible", resource: "{id}" },
        { method: "DELETE", path: "/{any+}", operation: "other", effect: "read" },
      ],
    });
    const drafts = (path: string) => {
      const r = classifyRest(canonical("DELETE", `https://svc.test${path}`), config);
      return r.ok ? r.drafts.map((d) => [d.operation, d.effect]) : r.code;
    };
    expect(drafts("/volumes/v1")).toEqual([["volumes.delete", "irreversible"]]);
    expect(drafts("/VOLUMES/v1")).toEqual([["volumes.delete", "irreversible"]]);
    expect(drafts("/Volumes/v1")).toEqual([["volumes.delete", "irreversible"]]);
    expect(drafts("/volumes/v1/")).toEqual([["volumes.delete", "irreversible"]]);
  });

  it("an empty segment never fills a parameter", () => {
    const r = classifyRequest("DELETE", `${STORAGE}/volumes/`);
    expect(r.ok && r.actions.map((a) => a.operation)).toEqual(["DELETE /volumes/"]);
  });
});

describe("a format suffix on the last segment: the route a Rails-style server runs", () => {
  // Rails routes `/volumes/v1/restore.json` (any `.format`) to the `restore` action, so the route
  // named by the path without its suffix is judged too when its last part is a literal.
  const config = restConfigSchema.parse({
    routes: [
      { method: "POST", path: "/volumes/{id}/restore", operation: "volumes.restore", effect: "irreversible", resource: "{id}" },
      { method: "DELETE", path: "/volumes/{id}", operation: "volumes.delete", effect: "irreversible", resource: "{id}" },
      { method: "GET", path: "/volumes/{id}/export", operation: "volumes.export", effect: "read", resource: "{id}" },
      { method: "POST", path: "/volumes/{id}/{rest+}", operation: "volumes.other", effect: "write", resource: "{id}" },
    ],
  });
  const drafts = (method: string, path: string) => {
    const r = classifyRest(canonical(method, `https://svc.test${path}`, method === "POST" ? { body: json({}) } : {}), config);
    return r.ok ? r.drafts.map((d) => [d.operation, d.effect, d.resource]) : r.code;
  };

  for (const path of ["/volumes/v1/restore.json", "/volumes/v1/restore.JSON/", "/volumes/v1/Restore.xml;v=1", "/volumes/v1/restore%2Ejson"]) {
    it(`POST ${path} is the irreversible restore, never the catch-all write`, () => {
      expect(drafts("POST", path)).toEqual([["volumes.restore", "irreversible", "v1"]]);
    });
  }

  it("GitHub: POST …/transfer.json is the irreversible transfer", () => {
    const r = classifyRequest("POST", `${GH}/repos/acme/app/transfer.json`, { body: json({ new_owner: "x" }) });
    expect(r.ok && r.actions.map((a) => [a.operation, a.effect, a.resource])).toEqual([["repos.transfer", "irreversible", "acme/app"]]);
  });

  it("a read named by the unsuffixed path is judged beside the written reading, the effect unchanged", () => {
    expect(drafts("GET", "/volumes/v1/export.csv")).toEqual([
      ["volumes.export", "read", "v1"],
      ["GET /volumes/v1/export.csv", "read", "/volumes/v1/export.csv"],
    ]);
  });

  it("a dotted name in a parameter is left whole: no second action, no other resource", () => {
    expect(drafts("DELETE", "/volumes/v1.json")).toEqual([["volumes.delete", "irreversible", "v1.json"]]);
    const r = classifyRequest("GET", `${GH}/repos/vercel/next.js`);
    expect(r.ok && r.actions.map((a) => [a.operation, a.resource])).toEqual([["repos.get", "vercel/next.js"]]);
  });

  it("a path without a route for its unsuffixed form keeps its reading", () => {
    expect(drafts("POST", "/volumes/v1/snapshot.json")).toEqual([["volumes.other", "write", "v1"]]);
    expect(drafts("POST", "/other/x.json")).toEqual([["POST /other/x.json", "write", "/other/x.json"]]);
  });
});

describe("trailing dots and spaces on a segment, which IIS drops", () => {
  const config = restConfigSchema.parse({
    routes: [
      { method: "POST", path: "/volumes/{id}/restore", operation: "volumes.restore", effect: "irreversible", resource: "{id}" },
      { method: "DELETE", path: "/volumes/{id}", operation: "volumes.delete", effect: "irreversible", resource: "{id}" },
    ],
  });
  const drafts = (method: string, path: string) => {
    const r = classifyRest(canonical(method, `https://svc.test${path}`, method === "POST" ? { body: json({}) } : {}), config);
    return r.ok ? r.drafts.map((d) => [d.operation, d.effect]) : r.code;
  };
  it("a literal spelled with trailing dots is still the route", () => {
    expect(drafts("POST", "/volumes/v1/restore.")).toEqual([["volumes.restore", "irreversible"]]);
    expect(drafts("POST", "/volumes/v1/restore..")).toEqual([["volumes.restore", "irreversible"]]);
    expect(drafts("POST", "/volumes/v1/restore%20")).toEqual([["volumes.restore", "irreversible"]]);
    expect(drafts("POST", "/volumes/v1/restore.%20.")).toEqual([["volumes.restore", "irreversible"]]);
    expect(drafts("DELETE", "/volumes./v1")).toEqual([["volumes.delete", "irreversible"]]);
  });
  it("a protocol endpoint spelled with a trailing dot is refused as a variant", () => {
    const r = opsClassify("POST", "/graphql.", NUKE);
    expect(r.ok ? r.effect : r.code).toBe("endpoint_path_variant");
  });
});

describe("a parameter with trailing dots or spaces is also read without them", () => {
  // IIS drops trailing dots and spaces from a segment before routing, so `DELETE /volumes/prod-db.`
  // deletes prod-db there; the parameter was taken as `prod-db.`, which a rule naming prod-db
  // does not match.
  const resources = (method: string, url: string) => {
    const result = classifyRequest(method, url);
    return result.ok ? result.actions.map((a) => [a.operation, a.resource]) : result.code;
  };
  for (const tail of [".", "..", "%20", ".%20.", "%2E"]) {
    it(`DELETE /volumes/prod-db${tail} names prod-db too`, () => {
      const found = resources("DELETE", `${STORAGE}/volumes/prod-db${tail}`);
      expect(found).toContainEqual(["volumes.delete", "prod-db"]);
    });
  }
  it("on GitHub, DELETE /repos/acme/secrets. names acme/secrets too", () => {
    expect(resources("DELETE", `${GH}/repos/acme/secrets.`)).toContainEqual(["repos.delete", "acme/secrets"]);
  });
  it("a plain name stays one action (the control)", () => {
    expect(resources("DELETE", `${STORAGE}/volumes/v1`)).toEqual([["volumes.delete", "v1"]]);
  });
});

describe("a numeric parameter is also read as the number a server parses", () => {
  // Rails' to_i, parseInt, Spring's Long and ASP.NET's int read 0123 and +123 as 123: a deny
  // rule naming repository 123 did not match DELETE /repositories/0123.
  const resources = (method: string, url: string) => {
    const result = classifyRequest(method, url);
    return result.ok ? result.actions.map((a) => [a.operation, a.resource]) : result.code;
  };
  for (const id of ["0123", "+123", "000123", "+0123"]) {
    it(`DELETE /repositories/${id} names repository 123 too`, () => {
      expect(resources("DELETE", `${GH}/repositories/${id}`)).toContainEqual(["repos.delete", "123"]);
    });
  }
  it("DELETE /organizations/007 names organization 7 too, and a storage volume 0042 is 42 too", () => {
    expect(resources("DELETE", `${GH}/organizations/007`)).toContainEqual(["orgs.delete", "7"]);
    expect(resources("DELETE", `${STORAGE}/volumes/0042`)).toContainEqual(["volumes.delete", "42"]);
  });
  it("a plain number and zero stay one action (the controls)", () => {
    expect(resources("DELETE", `${GH}/repositories/123`)).toEqual([["repos.delete", "123"]]);
    expect(resources("DELETE", `${STORAGE}/volumes/0`)).toEqual([["volumes.delete", "0"]]);
  });
});
