/**
 * Credentials bound to scope, from the attacker's side: a credential is injected only for actions
 * of its own service in the environments it serves, each inside the task's scope, even under a
 * policy that allows everything; and a credential the agent brings itself never reaches the
 * upstream, whether Bulkhead injects one or not. Real proxy, a Railway-like upstream that records
 * every header it receives.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bindCredential } from "@/lib/vault";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Hit, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const ALLOW_ALL = "unlisted: deny\nrules:\n  - service: '*'\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n";
const SECRET = "railway-staging-project-token-0001";
/** What the incident's agent found in a project file: it must never reach Railway through Bulkhead. */
const FOUND = "account-token-found-in-the-workspace";

describe("credentials bound to scope", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  let credentialId: string;

  const STAGING_READ = 'query { environment(id: "env_staging") { id } }';
  const PROD_READ = 'query { volume(id: "vol_prod") { id } }';
  const graphql = (token: string, query: string, headers: Record<string, string> = {}) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ query }) });
  /** Every header value that reached the upstream in one hit, lower-cased names. */
  const sent = (hit: Hit) => JSON.stringify(hit.headers);
  const last = () => railway.hits.at(-1)!;

  beforeAll(async () => {
    // Echoes every header it received, the way a debugging endpoint or an error page might, and
    // the last token it was ever sent (a request log, a "last delivery" page).
    let remembered = "";
    railway = await startHttpUpstream((hit, res) => {
      if (typeof hit.headers["project-access-token"] === "string") remembered = hit.headers["project-access-token"];
      res.writeHead(200, { "content-type": "application/json", "x-echo-token": String(hit.headers["project-access-token"] ?? ""), "x-last-token": remembered });
      res.end(JSON.stringify({ data: null, received: hit.headers, lastToken: remembered }));
    });
    h = await startProxyHarness();
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({
      data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging, vol_stg]\n  - environment: production\n    service: railway\n    resources: [vol_prod]\n" },
    });
    await h.addCredential({ name: "railway-staging", scheme: "http", host: RAILWAY, port: railway.port, headerTemplate: "Project-Access-Token: {secret}", secret: SECRET, environments: "staging" });
    credentialId = (await h.t.db.credential.findFirstOrThrow({ where: { name: "railway-staging" } })).id;
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  it("is injected for an action of its service in an environment it serves", async () => {
    const { token } = await h.newTask(ALLOW_ALL, { scope: "railway:*:irreversible" });
    const r = await graphql(token, STAGING_READ);
    expect(r.status).toBe(200);
    expect(last().headers["project-access-token"]).toBe(SECRET);
  });

  it("is not injected for production under an allow-all policy and a scope that reaches production: the request goes without it", async () => {
    const { token } = await h.newTask(ALLOW_ALL, { scope: "railway:*:irreversible" });
    const before = railway.hits.length;
    for (const query of [PROD_READ, 'mutation { volumeDelete(volumeId: "vol_prod") }', `query { a: environment(id: "env_staging") { id } b: volume(id: "vol_prod") { id } }`]) {
      const r = await graphql(token, query);
      expect(r.status, query).toBe(200);
      expect(sent(last()), query).not.toContain(SECRET);
      expect(last().headers["project-access-token"]).toBeUndefined();
    }
    expect(railway.hits.length).toBe(before + 3);
    // The completion events (written after each response) say why the credential was withheld.
    let withheld: unknown[] = [];
    for (let i = 0; i < 200 && withheld.length < 3; i++) {
      withheld = (await h.events()).filter((e) => e.type === "proxy.completed" && e.data.credentialWithheld).map((e) => e.data.credentialWithheld);
      if (withheld.length < 3) await new Promise((r) => setTimeout(r, 10));
    }
    expect(withheld).toEqual([
      "credential railway-staging serves railway in staging, not railway/production",
      "credential railway-staging serves railway in staging, not railway/production",
      "credential railway-staging serves railway in staging, not railway/staging, railway/production",
    ]);
  });

  it("a staging task never gets a production credential, even under an allow-all policy", async () => {
    await bindCredential(h.t.db, h.admin, credentialId, { environments: "production" });
    await h.sync();
    try {
      const { token } = await h.newTask(ALLOW_ALL, { scope: "railway:staging:irreversible" });
      const r = await graphql(token, STAGING_READ);
      expect(r.status).toBe(200);
      expect(sent(last())).not.toContain(SECRET);
      // And the production request itself never leaves: it lies outside the task's scope.
      const before = railway.hits.length;
      expect((await graphql(token, PROD_READ)).json?.error).toBe("token_scope");
      expect(railway.hits.length).toBe(before);
    } finally {
      await bindCredential(h.t.db, h.admin, credentialId, { environments: "staging" });
      await h.sync();
    }
  });

  it("a credential that serves another service is never injected for this one", async () => {
    await h.t.db.credential.update({ where: { id: credentialId }, data: { serviceId: "github" } });
    await h.sync();
    try {
      const { token } = await h.newTask(ALLOW_ALL, { scope: "railway:*:irreversible" });
      expect((await graphql(token, STAGING_READ)).status).toBe(200);
      expect(sent(last())).not.toContain(SECRET);
    } finally {
      await bindCredential(h.t.db, h.admin, credentialId, { environments: "staging" });
      await h.sync();
    }
  });

  it("a credential from before bindings existed (no service, no environments) is never injected until it is bound", async () => {
    await h.t.db.$executeRaw`UPDATE credentials SET service_id = NULL, environments = '' WHERE id = ${credentialId}::uuid`;
    await h.sync();
    const { token } = await h.newTask(ALLOW_ALL, { scope: "railway:*:irreversible" });
    expect((await graphql(token, STAGING_READ)).status).toBe(200);
    expect(sent(last())).not.toContain(SECRET);
    const bound = await bindCredential(h.t.db, h.admin, credentialId, { environments: ["staging"] });
    expect(bound).toMatchObject({ serviceId: "railway", environments: ["staging"] });
    await h.sync();
    expect((await graphql(token, STAGING_READ)).status).toBe(200);
    expect(last().headers["project-access-token"]).toBe(SECRET);
  });

  describe("the agent's own credentials never reach the upstream", () => {
    const agentHeaders = {
      authorization: `Bearer ${FOUND}`,
      cookie: `session=${FOUND}`,
      "project-access-token": FOUND, // the very header the vault's credential uses
      "team-access-token": FOUND,
      "x-api-key": FOUND,
      "private-token": FOUND,
      "x-auth-token": FOUND,
      "dd-api-key": FOUND,
      "x-client-secret": FOUND,
    };

    it("when the vault's credential is injected, withheld, or there is none", async () => {
      const { token } = await h.newTask(ALLOW_ALL, { scope: "railway:*:irreversible" });
      const injected = await graphql(token, STAGING_READ, agentHeaders);
      expect(injected.status).toBe(200);
      expect(last().headers["project-access-token"]).toBe(SECRET);
      expect(sent(last())).not.toContain(FOUND);

      const withheld = await graphql(token, PROD_READ, agentHeaders);
      expect(withheld.status).toBe(200);
      expect(sent(last())).not.toContain(FOUND);
      expect(sent(last())).not.toContain(SECRET);

      // No credential stored for the endpoint at all.
      await h.t.db.credential.delete({ where: { id: credentialId } });
      await h.sync();
      try {
        const bare = await graphql(token, STAGING_READ, { ...agentHeaders, Authorization: `Basic ${Buffer.from(`x:${FOUND}`).toString("base64")}` });
        expect(bare.status).toBe(200);
        expect(last().headers.authorization).toBeUndefined();
        expect(last().headers.cookie).toBeUndefined();
        expect(sent(last())).not.toContain(FOUND);
        // Ordinary headers still pass.
        expect((await graphql(token, STAGING_READ, { "x-request-id": "r-1", "idempotency-key": "k-1" })).status).toBe(200);
        expect(last().headers).toMatchObject({ "x-request-id": "r-1", "idempotency-key": "k-1" });
        expect(sent(last())).not.toContain(Buffer.from(`x:${FOUND}`).toString("base64"));
      } finally {
        await h.addCredential({ name: "railway-staging-2", scheme: "http", host: RAILWAY, port: railway.port, headerTemplate: "Project-Access-Token: {secret}", secret: SECRET, environments: "staging" });
        credentialId = (await h.t.db.credential.findFirstOrThrow({ where: { name: "railway-staging-2" } })).id;
      }
    });

    it("and the agent is never handed the upstream's secret, even when the upstream echoes it", async () => {
      const { token } = await h.newTask(ALLOW_ALL, { scope: "railway:staging:read" });
      const r = await graphql(token, STAGING_READ);
      expect(r.status).toBe(200);
      expect(last().headers["project-access-token"]).toBe(SECRET);
      expect(r.text).not.toContain(SECRET);
      expect(JSON.stringify(r.headers)).not.toContain(SECRET);
    });

    it("nor when the credential is withheld from this request and the upstream hands back one it was sent before", async () => {
      const { token } = await h.newTask(ALLOW_ALL, { scope: "railway:*:irreversible" });
      expect((await graphql(token, STAGING_READ)).status).toBe(200);
      expect(last().headers["project-access-token"]).toBe(SECRET);
      // Production is outside what the credential serves: it is not injected, yet the upstream remembers it.
      const r = await graphql(token, PROD_READ);
      expect(r.status).toBe(200);
      expect(last().headers["project-access-token"]).toBeUndefined();
      expect(r.text).toContain("lastToken");
      expect(r.text).not.toContain(SECRET);
      expect(JSON.stringify(r.headers)).not.toContain(SECRET);
    });
  });
});
