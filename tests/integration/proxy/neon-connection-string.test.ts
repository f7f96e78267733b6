/**
 * Neon's SQL-over-HTTP endpoint runs each statement in the database the `Neon-Connection-String`
 * header names. From the attacker's side, through the real proxy to a real upstream that records
 * what it receives: a task allowed on staging only names the production database in that header
 * (judged on the body and the descriptor, it went through as staging), and, where the vault
 * injects the connection string itself, names the staging one in a header that is then replaced
 * by the credential's (judged on the agent's header, it would go through as staging while the
 * credential's production string is what the upstream gets).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const STAGING_ONLY = "unlisted: deny\nrules:\n  - service: '*'\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n";
const INVENTORY = [
  "entries:",
  "  - environment: staging",
  "    resources: [app_staging, ep-dev-1.neon.test]",
  "  - environment: production",
  "    resources: [payroll, ep-main-1.neon.test]",
  "",
].join("\n");
const PRODUCTION_STRING = "postgresql://owner:prod-password-0001@ep-main-1.neon.test/payroll";

describe("Neon's connection-string header through the proxy", () => {
  let h: ProxyHarness;
  let upstream: Upstream;
  let token: string;
  const sql = (host: string, connection: string | null, query: string) =>
    viaProxy(h.proxyPort, `http://${host}:${upstream.port}/sql`, {
      token,
      headers: { "content-type": "application/json", ...(connection === null ? {} : { "neon-connection-string": connection }) },
      body: JSON.stringify({ query }),
    });

  beforeAll(async () => {
    upstream = await startHttpUpstream((_hit, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"rows":[]}');
    });
    h = await startProxyHarness();
    const neon = (id: string, host: string, database: string) => ({ id, hosts: [host], scheme: "http" as const, ports: [upstream.port], protocol: "sql-http" as const, sql: { paths: ["/sql"], queryField: "query", batchField: "queries", database }, proxy: { internalAddresses: ["127.0.0.1/32"] } });
    // The agent names the database in its own connection string (judged; not forwarded: its
    // password would be a credential of the agent's own).
    await h.addService(neon("neon-jwt", "api.jwt.test", "app_staging"));
    // The vault injects the connection string: the service is the production database.
    await h.addService(neon("neon-vault", "api.vault.test", "payroll"));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: INVENTORY } });
    await h.addCredential({ name: "neon-prod", scheme: "http", host: "api.vault.test", port: upstream.port, headerTemplate: "Neon-Connection-String: {secret}", secret: PRODUCTION_STRING });
    ({ token } = await h.newTask(STAGING_ONLY, { scope: "*:*:irreversible" }));
  });
  afterAll(async () => {
    await h?.close();
    await upstream?.close();
  });

  it("the control: the staging database is allowed", async () => {
    const before = upstream.hits.length;
    expect((await sql("api.jwt.test", "postgres://agent@ep-dev-1.neon.test/app_staging", "DELETE FROM orders")).status).toBe(200);
    expect(upstream.hits.length).toBe(before + 1);
  });

  it("a connection string the agent brings (a database password it found) is judged, never forwarded", async () => {
    const before = upstream.hits.length;
    const found = "postgres://owner:found-password-42@ep-dev-1.neon.test/app_staging";
    expect((await sql("api.jwt.test", found, "SELECT 1")).status).toBe(200);
    expect(upstream.hits.length).toBe(before + 1);
    const hit = upstream.hits.at(-1)!;
    expect(hit.headers["neon-connection-string"]).toBeUndefined();
    expect(JSON.stringify(hit.headers)).not.toContain("found-password-42");
  });

  it("the production database named in the header is judged as production: denied, nothing sent", async () => {
    const before = upstream.hits.length;
    for (const connection of ["postgres://agent@ep-dev-1.neon.test/payroll", "postgres://agent@ep-main-1.neon.test/app_staging"]) {
      const r = await sql("api.jwt.test", connection, "DELETE FROM orders");
      expect(r.status, connection).toBe(403);
    }
    // Unreadable, it is refused as malformed, not guessed.
    expect((await sql("api.jwt.test", "postgres://agent@ep-dev-1.neon.test/app_staging?dbname=payroll", "SELECT 1")).status).toBe(400);
    expect(upstream.hits.length).toBe(before);
  });

  it("a header the vault's credential replaces is not what is judged: naming staging there does not reach production", async () => {
    const before = upstream.hits.length;
    const r = await sql("api.vault.test", "postgres://agent@ep-dev-1.neon.test/app_staging", "DELETE FROM orders");
    expect(r.status).toBe(403);
    expect(upstream.hits.length).toBe(before);
  });
});
