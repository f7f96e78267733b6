import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRailwayImitation, startSqlEndpoint, type RailwayImitation } from "../../support/fake-services";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";

describe("semantic enforcement against servers that execute what they receive", () => {
  let h: ProxyHarness;
  let railway: RailwayImitation;
  let sql: Upstream & { statements: string[] };
  let token: string;

  const gql = (body: unknown, t = token) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token: t, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const query = (text: string, t = token) =>
    viaProxy(h.proxyPort, `http://db.test:${sql.port}/sql`, { token: t, headers: { "content-type": "application/json" }, body: JSON.stringify({ query: text }) });

  beforeAll(async () => {
    railway = await startRailwayImitation();
    sql = await startSqlEndpoint();
    h = await startProxyHarness();
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.addService({ id: "warehouse", hosts: ["db.test"], scheme: "http", ports: [sql.port], protocol: "sql-http", sql: { paths: ["/sql"], queryField: "query", database: "warehouse" }, proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging, vol_staging]\n" } });
    ({ token } = await h.newTask(
      "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n  - service: warehouse\n    effects: [read, write]\n",
    ));
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
    await sql.close();
  });

  it("Railway: the read executes; volumeDelete in every disguise never does", async () => {
    expect((await gql({ query: 'query { environment(id: "env_staging") { id name } }' })).status).toBe(200);
    expect(railway.executed).toEqual(["environment(env_staging)"]);
    const attempts: unknown[] = [
      { query: 'mutation { volumeDelete(volumeId: "vol_prod") }' },
      { query: "mutation M($v: ID!) { volumeDelete(volumeId: $v) }", variables: { v: "vol_prod" } },
      { query: 'mutation { harmless: volumeDelete(volumeId: "vol_prod") }' },
      { query: 'query Q { environment(id: "env_staging") { id } } mutation M { projectDelete(id: "p1") }' },
      { query: 'query Q { environment(id: "env_staging") { id } } mutation M { projectDelete(id: "p1") }', operationName: "M" },
      [{ query: 'query { environment(id: "env_staging") { id } }' }, { query: 'mutation { environmentDelete(id: "env_prod") }' }],
      { query: 'mutation { ...F } fragment F on Mutation { serviceDelete(id: "svc") }' },
      { extensions: { persistedQuery: { version: 1, sha256Hash: "a".repeat(64) } } },
    ];
    for (const body of attempts) {
      const r = await gql(body);
      expect([400, 403], JSON.stringify(body)).toContain(r.status);
    }
    // Mutations over GET are classified too.
    const overGet = await viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2?query=${encodeURIComponent('mutation { volumeDelete(volumeId: "vol_prod") }')}`, { token });
    expect([400, 403]).toContain(overGet.status);
    expect(railway.executed).toEqual(["environment(env_staging)"]);
  });

  it("SQL over HTTP: reads and scoped writes pass; DROP, unscoped DELETE and smuggled statements never arrive", async () => {
    expect((await query("SELECT * FROM orders WHERE id = 1")).status).toBe(200);
    expect((await query("UPDATE orders SET paid = true WHERE id = 1")).status).toBe(200);
    for (const text of [
      "DROP TABLE orders",
      "DELETE FROM orders",
      "SELECT 1; DROP TABLE orders",
      "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
      "EXPLAIN ANALYZE DELETE FROM orders",
      "COPY orders TO PROGRAM 'curl evil'",
      "DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$",
      "TRUNCATE orders",
      "SELECT pg_terminate_backend(42)",
      "this is not sql; drop table orders",
    ]) {
      const r = await query(text);
      expect([400, 403], text).toContain(r.status);
    }
    expect(sql.statements).toEqual(["SELECT * FROM orders WHERE id = 1", "UPDATE orders SET paid = true WHERE id = 1"]);
  });
});

describe("credentials and ports: exact service only, Bulkhead's own ports never", () => {
  let h: ProxyHarness;
  let a: Upstream;
  let b: Upstream;

  beforeAll(async () => {
    a = await startHttpUpstream();
    b = await startHttpUpstream();
    h = await startProxyHarness();
  });
  afterAll(async () => {
    await h.close();
    await a.close();
    await b.close();
  });

  it("injects the credential only for its exact scheme, host and port", async () => {
    await h.addService({ id: "multi", hosts: ["multi.test"], scheme: "http", ports: [a.port, b.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addCredential({ name: "multi-a", scheme: "http", host: "multi.test", port: a.port, headerTemplate: "X-Api-Key: {secret}", secret: "only-for-port-a-0001" });
    const { token } = await h.newTask("unlisted: deny\nrules:\n  - service: multi\n    effects: [read]\n");
    expect((await viaProxy(h.proxyPort, `http://multi.test:${a.port}/x`, { token })).status).toBe(200);
    expect((await viaProxy(h.proxyPort, `http://multi.test:${b.port}/x`, { token })).status).toBe(200);
    expect(a.hits.at(-1)!.headers["x-api-key"]).toBe("only-for-port-a-0001");
    expect(b.hits.at(-1)!.headers["x-api-key"]).toBeUndefined();
  });

  it("refuses the proxy's own port even for a service that lists it", async () => {
    await h.addService({ id: "sneaky", hosts: ["sneaky.test"], scheme: "http", ports: [h.proxyPort], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    const { token } = await h.newTask("unlisted: deny\nrules:\n  - service: sneaky\n    effects: [read, write]\n");
    const r = await viaProxy(h.proxyPort, `http://sneaky.test:${h.proxyPort}/`, { token });
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ error: "port_forbidden" });
  });

  it("refuses a port the service does not list", async () => {
    const { token } = await h.newTask("unlisted: deny\nrules:\n  - service: multi\n    effects: [read]\n");
    const r = await viaProxy(h.proxyPort, `http://multi.test:1/x`, { token });
    expect([400, 403]).toContain(r.status);
  });
});
