import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteCustomService } from "@/lib/services/services";
import { setInventoryYaml } from "@/lib/services/inventory";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startSqlEndpoint, } from "../../support/fake-services";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * What Bulkhead does not know is never harmless, through the real proxy: each request below is
 * sent by an agent whose policy would let a harmless-looking version through, to upstreams that
 * count what reaches them.
 */
const RAILWAY = "backboard.railway.com";
const GITHUB = "api.github.com";
const INVENTORY = "entries:\n  - environment: staging\n    resources: [env_staging, vol_staging, acme/app]\n";

describe("the proxy fails closed on what it does not know", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  let github: Upstream;
  let mcp: Upstream;
  let sql: Upstream & { statements: string[] };

  beforeAll(async () => {
    [railway, github, mcp, sql] = await Promise.all([startHttpUpstream(), startHttpUpstream(), startHttpUpstream(), startSqlEndpoint()]);
    h = await startProxyHarness();
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.addService(onLoopback("github", github.port, { scheme: "http" }));
    await h.addService({ id: "ops-mcp", hosts: ["mcp.test"], ports: [mcp.port], scheme: "http", protocol: "mcp", proxy: { internalAddresses: ["127.0.0.1/32"] }, mcp: { tools: [{ name: "list_volumes", effect: "read" }, { name: "drop_database", effect: "irreversible" }, { name: "delete_volume", effect: "irreversible", resourceArg: "volume_id" }] } });
    await h.addService({ id: "app-db", hosts: ["sql.test"], ports: [sql.port], scheme: "http", protocol: "sql-http", proxy: { internalAddresses: ["127.0.0.1/32"] }, sql: { readOnlyFunctions: ["safe_report"] } });
    await setInventoryYaml(h.t.db, h.admin, INVENTORY);
    await h.sync();
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all([railway, github, mcp, sql].map((u) => u?.close()));
  });

  const post = (token: string, url: string, body: string, method = "POST") =>
    viaProxy(h.proxyPort, url, { token, method, headers: { "content-type": "application/json" }, body });

  it("GraphQL: a read selected beside an unselected volumeDelete is refused; a mutation over GET never reaches Railway", async () => {
    const { token } = await h.newTask("rules:\n  - service: railway\n    effects: [read]\n");
    const before = railway.hits.length;
    const url = `http://${RAILWAY}:${railway.port}/graphql/v2`;
    const doc = 'query Q { me { id } } mutation M { volumeDelete(volumeId: "vol_prod") }';
    const mixed = await post(token, url, JSON.stringify({ query: doc, operationName: "Q" }));
    expect(mixed.status).toBe(403);
    expect(String(mixed.json?.reason)).toMatch(/volumeDelete/);
    const typename = await post(token, url, JSON.stringify({ query: "mutation { __typename }" }));
    expect(typename.status).toBe(403);
    const overGet = await viaProxy(h.proxyPort, `${url}?query=${encodeURIComponent("mutation { __typename }")}`, { token });
    expect([overGet.status, overGet.json?.error]).toEqual([400, "graphql_mutation_over_get"]);
    const aliases = await post(token, url, JSON.stringify({ query: `query { ${Array.from({ length: 40 }, (_, i) => `a${i}: me { id }`).join(" ")} }` }));
    expect([aliases.status, aliases.json?.error]).toEqual([400, "graphql_too_many_aliases"]);
    expect(railway.hits.length).toBe(before);
    expect((await post(token, url, JSON.stringify({ query: "query { me { id } }" }))).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });

  it("GraphQL: parameters hidden behind a ';' in the URL, or carried by an OPTIONS, never pass as a preflight or a read", async () => {
    const { token } = await h.newTask("rules:\n  - service: railway\n    effects: [read]\n");
    const before = railway.hits.length;
    const url = `http://${RAILWAY}:${railway.port}/graphql/v2`;
    const read = encodeURIComponent("query { me { id } }");
    const drop = encodeURIComponent('mutation { volumeDelete(volumeId: "vol_prod") }');
    // Rack 2 splits at ';' too, and its last `query` wins: the mutation.
    const hidden = await viaProxy(h.proxyPort, `${url}?query=${read}&a=1;query=${drop}`, { token });
    expect([hidden.status, hidden.json?.error]).toEqual([400, "graphql_ambiguous_request"]);
    // An OPTIONS used to be a preflight whatever its URL carried.
    const options = await viaProxy(h.proxyPort, `${url}?query=${drop}`, { token, method: "OPTIONS" });
    expect(options.status).toBe(403);
    expect(String(options.json?.reason)).toMatch(/volumeDelete/);
    expect(railway.hits.length).toBe(before);
    expect((await viaProxy(h.proxyPort, url, { token, method: "OPTIONS" })).status).toBe(200);
    expect((await viaProxy(h.proxyPort, `${url}?query=${read}&a=1;b=2`, { token })).status).toBe(200);
    expect(railway.hits.length).toBe(before + 2);
  });

  it("REST: a deny rule naming a resource stops its percent-encoded spelling", async () => {
    const files = await startHttpUpstream();
    try {
      await h.addService({ id: "files", hosts: ["files.test"], ports: [files.port], scheme: "http", protocol: "rest", rest: { routes: [{ method: "GET", path: "/files/{name}", operation: "files.get", resource: "{name}" }] }, proxy: { internalAddresses: ["127.0.0.1/32"] } });
      const { token } = await h.newTask('rules:\n  - service: files\n    resources: ["prod@db"]\n    decision: deny\n  - service: files\n    effects: [read]\n');
      const url = `http://files.test:${files.port}/files`;
      for (const name of ["prod@db", "prod%40db", "prod%40%64b"]) {
        const r = await viaProxy(h.proxyPort, `${url}/${name}`, { token });
        expect([r.status, r.json?.error], name).toEqual([403, "policy_deny"]);
      }
      expect(files.hits.length).toBe(0);
      expect((await viaProxy(h.proxyPort, `${url}/staging%40db`, { token })).status).toBe(200);
      expect(files.hits.length).toBe(1);
    } finally {
      await deleteCustomService(h.t.db, h.admin, "files");
      await h.sync();
      await files.close();
    }
  });

  it("REST: a rule about an unrouted path applies to the spelling a server serves (;parameters, trailing dots dropped)", async () => {
    const plain = await startHttpUpstream();
    try {
      await h.addService({ id: "plain", hosts: ["plain.test"], ports: [plain.port], scheme: "http", protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
      const { token } = await h.newTask('rules:\n  - service: plain\n    operations: ["DELETE /admin/*"]\n    decision: deny\n  - service: plain\n    effects: [read, write, destructive]\n');
      const url = `http://plain.test:${plain.port}`;
      for (const path of ["/admin/users", "/admin;jsessionid=1/users", "/admin./users", "/admin%20/users"]) {
        const r = await viaProxy(h.proxyPort, `${url}${path}`, { token, method: "DELETE" });
        expect([r.status, r.json?.error], path).toEqual([403, "policy_deny"]);
      }
      expect(plain.hits.length).toBe(0);
      expect((await viaProxy(h.proxyPort, `${url}/other;x/users`, { token, method: "DELETE" })).status).toBe(200);
      expect(plain.hits.length).toBe(1);
    } finally {
      await deleteCustomService(h.t.db, h.admin, "plain");
      await h.sync();
      await plain.close();
    }
  });

  it("REST: HEAD does not pass a rule that allows only the GET operation", async () => {
    const { token } = await h.newTask("rules:\n  - service: github\n    operations: [repos.get]\n    effects: [read]\n");
    const before = github.hits.length;
    const url = `http://${GITHUB}:${github.port}/repos/acme/app`;
    const head = await viaProxy(h.proxyPort, url, { token, method: "HEAD" });
    expect(head.status).toBe(403);
    expect(github.hits.length).toBe(before);
    expect((await viaProxy(h.proxyPort, url, { token })).status).toBe(200);
    expect(github.hits.length).toBe(before + 1);
  });

  it("REST: GitHub's /repositories/{id} and /organizations/{id} spellings are judged like /repos/{owner}/{repo} and /orgs/{org}", async () => {
    // Everything short of irreversible: deleting, transferring or publishing a repository needs more.
    const { token } = await h.newTask("rules:\n  - service: github\n    effects: [read, write, destructive]\n", { scope: "github:*:irreversible" });
    const before = github.hits.length;
    const url = `http://${GITHUB}:${github.port}/repositories/1296269`;
    const json = { "content-type": "application/json" };
    const attempts = [
      viaProxy(h.proxyPort, url, { token, method: "DELETE" }),
      viaProxy(h.proxyPort, `${url}/transfer`, { token, method: "POST", headers: json, body: '{"new_owner":"elsewhere"}' }),
      viaProxy(h.proxyPort, url, { token, method: "PATCH", headers: json, body: '{"private":false}' }),
      viaProxy(h.proxyPort, `${url}/git/refs/heads/main`, { token, method: "PATCH", headers: json, body: '{"sha":"abc","force":true}' }),
      viaProxy(h.proxyPort, `http://${GITHUB}:${github.port}/organizations/11708465`, { token, method: "DELETE" }),
    ];
    for (const r of await Promise.all(attempts)) {
      expect([r.status, r.json?.error], r.text).toEqual([403, "policy_deny"]);
      expect(String(r.json?.reason)).toMatch(/^irreversible/);
    }
    expect(github.hits.length).toBe(before);
    expect((await viaProxy(h.proxyPort, `${url}/issues?page=2`, { token })).status).toBe(200);
    expect(github.hits.length).toBe(before + 1);
  });

  it("MCP: case-twin keys, a lone Method beside result, tool names outside the grammar and non-MCP methods reach nothing", async () => {
    const { token } = await h.newTask("rules:\n  - service: ops-mcp\n    effects: [read, write]\n");
    const before = mcp.hits.length;
    const url = `http://mcp.test:${mcp.port}/mcp`;
    const attempts: Array<[string, string]> = [
      ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes","Name":"drop_database"}}', "invalid_json"],
      ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes"},"paramſ":{"name":"drop_database"}}', "invalid_json"],
      ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes","name\\u0000":"drop_database"}}', "invalid_json"],
      ['{"jsonrpc":"2.0","id":1,"result":{},"Method":"tools/call","params":{"name":"drop_database"}}', "json_key_variant"],
      ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_database "}}', "mcp_invalid_tool_name"],
      ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"Drop_Database"}}', "mcp_tool_name_variant"],
      ['{"jsonrpc":"2.0","id":1,"method":"admin/dropDatabase","params":{}}', "mcp_unknown_method"],
    ];
    for (const [body, code] of attempts) {
      const r = await post(token, url, body);
      expect([r.status, r.json?.error], body).toEqual([400, code]);
      expect(r.json?.auditEventId, body).toBeTruthy();
    }
    expect(mcp.hits.length).toBe(before);
    expect((await post(token, url, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_volumes"}}')).status).toBe(200);
    expect(mcp.hits.length).toBe(before + 1);
  });

  it("MCP: file:/etc/passwd is the file:///etc/passwd a deny rule names", async () => {
    const { token } = await h.newTask('rules:\n  - service: ops-mcp\n    resources: ["file://*"]\n    decision: deny\n  - service: ops-mcp\n    effects: [read]\n');
    const before = mcp.hits.length;
    const url = `http://mcp.test:${mcp.port}/mcp`;
    for (const uri of ["file:/etc/passwd", "FILE://localhost/etc/passwd", "file:///tmp/../etc/passwd"]) {
      const r = await post(token, url, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "resources/read", params: { uri } }));
      expect(r.status, uri).toBe(403);
    }
    expect(mcp.hits.length).toBe(before);
  });

  it("SQL: an unknown function is not a read; a declared one is", async () => {
    const { token } = await h.newTask("rules:\n  - service: app-db\n    effects: [read]\n");
    const url = `http://sql.test:${sql.port}/`;
    const before = sql.statements.length;
    // An operator runs a function too, also before a sub-select and in ORDER BY … USING.
    for (const query of ["SELECT purge_tenant(42)", "SELECT * FROM purge_tenant(42)", "SELECT 1\u0000; DROP TABLE users", "SELECT 1 WHERE 42 OPERATOR(public.=) ANY (SELECT id FROM users)", "SELECT * FROM users ORDER BY id USING ###"]) {
      expect((await post(token, url, JSON.stringify({ query }))).status, query).toBe(403);
    }
    expect(sql.statements.length).toBe(before);
    expect((await post(token, url, JSON.stringify({ query: "SELECT safe_report(1), lower('x')" }))).status).toBe(200);
    expect(sql.statements.length).toBe(before + 1);
  });

  it("SQL: a table read through a built-in that names it in a string is a read of that table; a whole schema or database is not analysable", async () => {
    const { token } = await h.newTask('rules:\n  - service: app-db\n    resources: ["secrets"]\n    decision: deny\n  - service: app-db\n    effects: [read]\n');
    const url = `http://sql.test:${sql.port}/`;
    const before = sql.statements.length;
    for (const query of ["SELECT * FROM secrets", "SELECT table_to_xml('secrets', true, false, '')", "SELECT table_to_xml('\"secrets\"'::regclass, true, false, '')", "SELECT database_to_xml(true, true, '')"]) {
      expect((await post(token, url, JSON.stringify({ query }))).status, query).toBe(403);
    }
    expect(sql.statements.length).toBe(before);
    expect((await post(token, url, JSON.stringify({ query: "SELECT table_to_xml('orders', true, false, '')" }))).status).toBe(200);
    expect(sql.statements.length).toBe(before + 1);
  });

  it("SQL: a deny rule naming a table stops its schema-qualified spellings, and an inventory entry for it cannot be dodged by one", async () => {
    const { token } = await h.newTask('rules:\n  - service: app-db\n    resources: ["secrets"]\n    decision: deny\n  - service: app-db\n    effects: [read, write]\n');
    const url = `http://sql.test:${sql.port}/`;
    const before = sql.statements.length;
    for (const query of ["SELECT * FROM secrets", "SELECT * FROM public.secrets", "SELECT * FROM app.public.secrets", "UPDATE public.secrets SET v = 1 WHERE id = 2", "SELECT table_to_xml('public.secrets', true, false, '')"]) {
      expect((await post(token, url, JSON.stringify({ query }))).status, query).toBe(403);
    }
    expect(sql.statements.length).toBe(before);
    expect((await post(token, url, JSON.stringify({ query: "SELECT * FROM public.orders" }))).status).toBe(200);
    expect(sql.statements.length).toBe(before + 1);
  });

  it("SQL: an EXPLAIN that runs its statement is judged by that statement, however ANALYZE is spelled and whatever the statement's kind", async () => {
    const { token } = await h.newTask("rules:\n  - service: app-db\n    effects: [read]\n");
    const url = `http://sql.test:${sql.port}/`;
    const before = sql.statements.length;
    // PostgreSQL keeps the last ANALYZE option (this deletes every row); EXPLAIN ANALYZE runs an
    // EXECUTE's prepared statement and a CREATE TABLE AS as well.
    for (const query of ["EXPLAIN (ANALYZE false, ANALYZE true) DELETE FROM users", "EXPLAIN ANALYZE EXECUTE purge", "EXPLAIN ANALYZE CREATE TABLE copy AS SELECT * FROM users"]) {
      const r = await post(token, url, JSON.stringify({ query }));
      expect(r.status, query).toBe(403);
    }
    expect(sql.statements.length).toBe(before);
    expect((await post(token, url, JSON.stringify({ query: "EXPLAIN (ANALYZE false) DELETE FROM users" }))).status).toBe(200);
    expect(sql.statements.length).toBe(before + 1);
  });

  it("a policy naming a service, environment or operation that does not exist is refused at creation, with a hint", async () => {
    await expect(h.newTask("rules:\n  - service: railwy\n    decision: deny\n")).rejects.toMatchObject({ details: { fieldErrors: { policyYaml: [expect.stringMatching(/did you mean "railway"/)] } } });
    await expect(h.newTask("rules:\n  - service: railway\n    environments: [stagng]\n    effects: [read]\n")).rejects.toMatchObject({
      details: { fieldErrors: { policyYaml: [expect.stringMatching(/did you mean "staging"/)] } },
    });
    await expect(h.newTask("rules:\n  - service: railway\n    operations: [volumDelete]\n    decision: deny\n")).rejects.toMatchObject({
      details: { fieldErrors: { policyYaml: [expect.stringMatching(/did you mean "volumeDelete"/)] } },
    });
  });

  it("when a name a stored policy uses disappears, the worker refuses the task's requests (fail closed) and says why", async () => {
    const scratch = await startHttpUpstream();
    try {
      await h.addService({ id: "scratch", hosts: ["scratch.test"], ports: [scratch.port], scheme: "http", protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
      const { token } = await h.newTask("rules:\n  - service: scratch\n    decision: deny\n    operations: [DELETE /*]\n  - service: unknown\n    effects: [read, write, destructive]\n");
      const url = `http://scratch.test:${scratch.port}/items/1`;
      expect((await viaProxy(h.proxyPort, url, { token })).status).toBe(403); // GET: nothing allows scratch reads
      await deleteCustomService(h.t.db, h.admin, "scratch");
      await h.sync();
      // Without the check the deny rule would name nothing and the host would fall to the
      // `unknown` allow rule: the DELETE it was meant to stop would go through.
      const r = await viaProxy(h.proxyPort, url, { token, method: "DELETE" });
      expect([r.status, r.json?.error]).toEqual([403, "policy_invalid"]);
      expect(String(r.json?.reason)).toMatch(/service "scratch" does not exist/);
      expect(scratch.hits.length).toBe(0);
    } finally {
      await scratch.close();
    }
  });

  it("MCP: a resource argument sent as a list or an object never dodges a deny rule naming the resource", async () => {
    const { token } = await h.newTask(
      "rules:\n  - service: ops-mcp\n    resources: [vol_prod]\n    decision: deny\n  - service: ops-mcp\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n",
    );
    const before = mcp.hits.length;
    const url = `http://mcp.test:${mcp.port}/mcp`;
    const call = (volume: unknown) => JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "delete_volume", arguments: { volume_id: volume } } });
    for (const volume of [["vol_prod"], ["vol_scratch", "vol_prod"]]) {
      const r = await post(token, url, call(volume));
      expect([r.status, r.json?.error], JSON.stringify(volume)).toEqual([403, "policy_deny"]);
    }
    for (const volume of [{ $ne: null }, true, [{ id: "vol_prod" }]]) {
      const r = await post(token, url, call(volume));
      expect([r.status, r.json?.error], JSON.stringify(volume)).toEqual([400, "mcp_invalid_resource_argument"]);
    }
    expect(mcp.hits.length).toBe(before);
    expect((await post(token, url, call(["vol_scratch"]))).status).toBe(200);
    expect(mcp.hits.length).toBe(before + 1);
  });

  it("SQL over HTTP: a statement in the URL, or a WHERE with a vacuous OR branch, never reaches the database as a write", async () => {
    // Unrestricted scope: the policy is what must refuse the destructive statements here.
    const { token } = await h.newTask("rules:\n  - service: app-db\n    effects: [read, write]\n", { scope: "*:*:irreversible" });
    const url = `http://sql.test:${sql.port}/`;
    const before = sql.statements.length;
    const inUrl = await post(token, `${url}?query=${encodeURIComponent("DROP TABLE orders")}`, JSON.stringify({ query: "SELECT 1" }));
    expect([inUrl.status, inUrl.json?.error]).toEqual([400, "sql_ambiguous_request"]);
    for (const text of ["DELETE FROM orders WHERE id = 1 OR 1=1", "UPDATE orders SET paid = true WHERE id = 1 OR true"]) {
      const r = await post(token, url, JSON.stringify({ query: text }));
      expect([r.status, r.json?.error], text).toEqual([403, "policy_deny"]);
    }
    expect(sql.statements.length).toBe(before);
    expect((await post(token, url, JSON.stringify({ query: "DELETE FROM orders WHERE id = 1 OR id = 2" }))).status).toBe(200);
    expect(sql.statements.length).toBe(before + 1);
  });

  it("GitHub: force in the URL or as a truthy string, and a trailing dot on a denied repository, never reach GitHub", async () => {
    const { token } = await h.newTask(
      "rules:\n  - service: github\n    resources: [acme/secrets]\n    decision: deny\n  - service: github\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n    operations: [git.refs.update, repos.delete]\n",
    );
    const before = github.hits.length;
    const ref = `http://${GITHUB}:${github.port}/repos/acme/app/git/refs/heads/main`;
    const inUrl = await post(token, `${ref}?force=true`, JSON.stringify({ sha: "abc" }), "PATCH");
    expect([inUrl.status, inUrl.json?.error]).toEqual([400, "ambiguous_parameter"]);
    const truthy = await post(token, ref, JSON.stringify({ sha: "abc", force: "false" }), "PATCH");
    expect([truthy.status, truthy.json?.error]).toEqual([403, "policy_deny"]);
    const dotted = await viaProxy(h.proxyPort, `http://${GITHUB}:${github.port}/repos/acme/secrets.`, { token, method: "DELETE" });
    expect([dotted.status, dotted.json?.error]).toEqual([403, "policy_deny"]);
    expect(github.hits.length).toBe(before);
    expect((await post(token, ref, JSON.stringify({ sha: "abc", force: false }), "PATCH")).status).toBe(200);
    expect(github.hits.length).toBe(before + 1);
  });

  it("settings for later statements, config patches, hidden form parameters and overrides never reach the upstream as writes", async () => {
    // Unrestricted scope: the policy (read and write only) is what must refuse these.
    const { token } = await h.newTask("rules:\n  - service: app-db\n    effects: [read, write]\n  - service: railway\n    effects: [read, write]\n  - service: github\n    effects: [read, write]\n", { scope: "*:*:irreversible" });
    const [sqlBefore, railwayBefore, githubBefore] = [sql.statements.length, railway.hits.length, github.hits.length];
    const sqlUrl = `http://sql.test:${sql.port}/`;
    // Each changes how the server reads later SQL, or runs a command: irreversible, not a write.
    for (const query of ["ALTER ROLE CURRENT_USER SET standard_conforming_strings = off", "SELECT set_config('standard_conforming_strings', 'off', false)", "SET client_encoding TO 'SJIS'", "ALTER SYSTEM SET archive_command = 'sh -c id'"]) {
      const r = await post(token, sqlUrl, JSON.stringify({ query }));
      expect([r.status, r.json?.error], query).toEqual([403, "policy_deny"]);
    }
    const railwayUrl = `http://${RAILWAY}:${railway.port}/graphql/v2`;
    const patch = await post(token, railwayUrl, JSON.stringify({ query: 'mutation { environmentPatchCommit(environmentId: "env_staging", patch: { volumes: { vol_staging: { isDeleted: true } } }) }' }));
    expect([patch.status, patch.json?.error]).toEqual([403, "policy_deny"]);
    expect(String(patch.json?.reason)).toMatch(/environmentPatchCommit/);
    // Old Django splits a form body at ';' and keeps the last query: the volumeDelete.
    const read = encodeURIComponent("{ me { id } }");
    const drop = encodeURIComponent('mutation { volumeDelete(volumeId: "vol_staging") }');
    const form = await viaProxy(h.proxyPort, railwayUrl, { token, method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `query=${read}&a=1;query=${drop}` });
    expect([form.status, form.json?.error]).toEqual([400, "graphql_ambiguous_request"]);
    const repo = `http://${GITHUB}:${github.port}/repos/acme/app`;
    const internal = await post(token, repo, JSON.stringify({ visibility: "internal" }), "PATCH");
    expect([internal.status, internal.json?.error]).toEqual([403, "policy_deny"]);
    // Laravel's $request->repo reads the query before the route's {repo}.
    const named = await viaProxy(h.proxyPort, `${repo}?repo=secrets`, { token });
    expect([named.status, named.json?.error]).toEqual([400, "ambiguous_parameter"]);
    // Rack reads multipart/mixed as a form: _method=DELETE turns this POST into a DELETE.
    const mixed = await viaProxy(h.proxyPort, `${repo}/issues`, { token, method: "POST", headers: { "content-type": "multipart/mixed; boundary=XyZ" }, body: '--XyZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--XyZ--\r\n' });
    expect([mixed.status, mixed.json?.error]).toEqual([403, "policy_deny"]);
    expect([sql.statements.length, railway.hits.length, github.hits.length]).toEqual([sqlBefore, railwayBefore, githubBefore]);
    // The controls reach their upstreams.
    expect((await post(token, sqlUrl, JSON.stringify({ query: "SET client_encoding TO 'UTF8'" }))).status).toBe(200);
    expect((await viaProxy(h.proxyPort, `${repo}?per_page=1`, { token })).status).toBe(200);
    expect([sql.statements.length, github.hits.length]).toEqual([sqlBefore + 1, githubBefore + 1]);
  });

  it("an environment removed from the inventory makes the policies naming it unusable, not silently empty", async () => {
    // Unrestricted scope: the policy is what must become unusable here.
    const { token } = await h.newTask("rules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n", { scope: "*:*:irreversible" });
    const url = `http://${RAILWAY}:${railway.port}/graphql/v2`;
    expect((await post(token, url, JSON.stringify({ query: 'query { environment(id: "env_staging") { id } }' }))).status).toBe(200);
    await setInventoryYaml(h.t.db, h.admin, "entries: []\n");
    await h.sync();
    const before = railway.hits.length;
    const r = await post(token, url, JSON.stringify({ query: 'query { environment(id: "env_staging") { id } }' }));
    expect([r.status, r.json?.error]).toEqual([403, "policy_invalid"]);
    expect(String(r.json?.reason)).toMatch(/environment "staging" does not exist/);
    expect(railway.hits.length).toBe(before);
    await setInventoryYaml(h.t.db, h.admin, INVENTORY);
    await h.sync();
  });
});
