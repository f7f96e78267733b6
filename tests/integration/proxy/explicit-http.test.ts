import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { exchange, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/** Railway's API, imitated on plain HTTP loopback: the proxy sees real GraphQL bodies. */
const RAILWAY = "backboard.railway.com";

describe("explicit proxy, plain HTTP: the PocketOS incident and the basics", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  let token: string;
  const agentAuth = "Bearer agent-found-this-in-a-project-file";

  const send = (t: string | null, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}${path}`, {
      token: t,
      headers: { "content-type": "application/json", authorization: agentAuth, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.addCredential({ name: "railway", scheme: "http", host: RAILWAY, port: railway.port, headerTemplate: "Authorization: Bearer {secret}", secret: "railway-real-secret-123" });
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging, vol_staging]\n" } });
    // A scope wider than the policy, so these tests exercise the policy (layer 2); tests/integration/proxy/token-scope.test.ts covers the scope.
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n", { scope: "railway:*:irreversible" }));
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  it("forwards an allowed read with the vault's credential and without the agent's", async () => {
    const before = railway.hits.length;
    const r = await send(token, "/graphql/v2", { query: 'query { environment(id: "env_staging") { id name } }' });
    expect(r.status).toBe(200);
    expect(r.headers["x-bulkhead-decision"]).toBe("allow");
    expect(railway.hits.length).toBe(before + 1);
    const hit = railway.hits.at(-1)!;
    expect(hit.headers.authorization).toBe("Bearer railway-real-secret-123");
    expect(hit.headers["proxy-authorization"]).toBeUndefined();
    // The agent never sees the secret, even though this upstream echoes the Authorization header.
    expect(JSON.stringify(r.json)).not.toContain("railway-real-secret-123");
    expect(r.json?.sawAuthorization).toBe("Bearer " + "*".repeat("railway-real-secret-123".length));
  });

  it("refuses volumeDelete on the production volume: 403 with the reason, audited, nothing reaches Railway", async () => {
    const before = railway.hits.length;
    const r = await send(token, "/graphql/v2", { query: 'mutation { volumeDelete(volumeId: "vol_prod_123") }' });
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ error: "policy_deny", kind: "denied" });
    expect(String(r.json?.reason)).toMatch(/irreversible.*volumeDelete/);
    expect(r.json?.auditEventId).toBeTruthy();
    expect(railway.hits.length).toBe(before);
    const event = (await h.events()).find((e) => e.data.eventId === r.json?.auditEventId);
    expect(event).toMatchObject({ type: "proxy.decision", outcome: "deny" });
  });

  it("refuses an aliased, batched or fragment-hidden delete the same way", async () => {
    const before = railway.hits.length;
    const bodies = [
      { query: 'mutation { safe: volumeDelete(volumeId: "vol_prod_123") }' },
      [{ query: 'query { environment(id: "env_staging") { id } }' }, { query: 'mutation { volumeDelete(volumeId: "vol_staging") }' }],
      // The delete hidden in a named fragment spread at the root of the mutation.
      { query: 'mutation M { ...F } fragment F on Mutation { volumeDelete(volumeId: "vol_staging") }', operationName: "M" },
      // ... in an inline fragment.
      { query: 'mutation { ... on Mutation { volumeDelete(volumeId: "vol_staging") } }' },
      // ... in an operation the request does not select, behind a fragment: a server that
      // ignores operationName would run it.
      { query: 'query Q { environment(id: "env_staging") { id } } mutation M { ...F } fragment F on Mutation { volumeDelete(volumeId: "vol_staging") }', operationName: "Q" },
    ];
    for (const b of bodies) {
      const r = await send(token, "/graphql/v2", b);
      expect(r.status, JSON.stringify(b)).toBe(403);
      expect(String(r.json?.reason)).toMatch(/volumeDelete/);
    }
    expect(railway.hits.length).toBe(before);
    // The same fragment shape around a read is forwarded: the refusals above are about the delete.
    const read = await send(token, "/graphql/v2", { query: 'query Q { ...F } fragment F on Query { environment(id: "env_staging") { id } }', operationName: "Q" });
    expect(read.status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });

  it("identity: no token, a garbage token and a Basic-wrapped token", async () => {
    const before = railway.hits.length;
    expect((await send(null, "/graphql/v2", { query: "{ me { id } }" })).status).toBe(407);
    const bad = await send("not.a.token", "/graphql/v2", { query: "{ me { id } }" });
    expect(bad.status).toBe(407);
    expect(bad.json).toMatchObject({ error: "token_malformed" });
    expect(railway.hits.length).toBe(before);

    const basic = await viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, {
      proxyAuthorization: `Basic ${Buffer.from(`agent:${token}`).toString("base64")}`,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: 'query { environment(id: "env_staging") { id } }' }),
    });
    expect(basic.status).toBe(200);
  });

  it("judges a request on every header field it sent, however many: none is dropped after the 2000th", async () => {
    // Node's HTTP server keeps only the first 2000 fields of a head in `req.headers` (and says
    // nothing): a second Host after them passed as no duplicate, and a Content-Length after them
    // made a JSON body vanish, judged and forwarded as `content-length: 0`. 2,100 short fields fit
    // well inside the default 16 KiB head.
    const raw = async (bytes: string) => {
      const socket = net.connect(h.proxyPort, "127.0.0.1");
      await new Promise((r) => socket.once("connect", r));
      return exchange(socket, bytes, 800);
    };
    const filler = "a:b\r\n".repeat(2100);
    const head = (extra: string) => `POST http://${RAILWAY}:${railway.port}/graphql/v2 HTTP/1.1\r\nHost: ${RAILWAY}:${railway.port}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Type: application/json\r\n${filler}${extra}Connection: close\r\n\r\n`;
    const before = railway.hits.length;
    const twoHosts = await raw(head(`Host: evil.test\r\nContent-Length: 0\r\n`));
    expect(statuses(twoHosts)).toEqual([400]);
    expect(twoHosts).toContain('"duplicate_header"');
    expect(railway.hits.length).toBe(before);
    const body = JSON.stringify({ query: 'query { environment(id: "env_staging") { id name } }' });
    const late = await raw(head(`Content-Length: ${Buffer.byteLength(body)}\r\n`) + body);
    expect(statuses(late)).toEqual([200]);
    expect(railway.hits.length).toBe(before + 1);
    expect(railway.hits.at(-1)!.body).toBe(body);
  });

  it("revocation: ending the task makes the very token fail at once", async () => {
    const own = await h.newTask("unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n");
    expect((await send(own.token, "/graphql/v2", { query: 'query { environment(id: "env_staging") { id } }' })).status).toBe(200);
    await h.t.db.task.update({ where: { id: own.taskId }, data: { status: "ended", endedAt: new Date() } });
    await h.sync();
    const r = await send(own.token, "/graphql/v2", { query: 'query { environment(id: "env_staging") { id } }' });
    expect(r.status).toBe(407);
    expect(r.json).toMatchObject({ error: "token_task_revoked" });
  });

  it("expiry: a token of a task whose time is up is refused as expired, also once the task left the snapshot", async () => {
    const own = await h.newTask("unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n");
    const query = { query: 'query { environment(id: "env_staging") { id } }' };
    expect((await send(own.token, "/graphql/v2", query)).status).toBe(200);
    // The token itself stays valid (minted for 30 minutes): only the task's end refuses it.
    await h.t.db.task.update({ where: { id: own.taskId }, data: { expiresAt: new Date(Date.now() - 1000) } });
    // In force once the worker has read the change (its notification, or this reload).
    await h.sync();
    const early = await send(own.token, "/graphql/v2", query);
    expect(early.status).toBe(407);
    expect(early.json).toMatchObject({ error: "token_task_expired" });
    // The task now reads as expired, and the snapshot (active tasks only) no longer holds it.
    await h.t.db.task.update({ where: { id: own.taskId }, data: { status: "expired" } });
    await h.sync();
    const r = await send(own.token, "/graphql/v2", query);
    expect(r.status).toBe(407);
    expect(r.json).toMatchObject({ error: "token_task_expired" });
  });

  it("destinations: loopback, metadata and other spellings are refused before any connection", async () => {
    const counter = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    let accepted = 0;
    await new Promise<void>((r) => counter.listen(0, "127.0.0.1", () => r()));
    const port = (counter.address() as net.AddressInfo).port;
    const { token: anyToken } = await h.newTask("unlisted: deny\nrules:\n  - service: unknown\n    effects: [read, write, destructive]\n");
    for (const url of [
      `http://127.0.0.1:${port}/`,
      `http://2130706433:${port}/`,
      `http://0x7f.1:${port}/`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      "http://169.254.169.254/latest/meta-data/",
      `http://localhost:${port}/`,
    ]) {
      const res = await viaProxy(h.proxyPort, url, { token: anyToken });
      expect([400, 403], url).toContain(res.status);
      expect(String(res.json?.error), url).toMatch(/destination_forbidden|port_forbidden|invalid_host/);
    }
    expect(accepted).toBe(0);
    await new Promise((r) => counter.close(r));
  });

  it("passes redirects back instead of following them", async () => {
    const redirecting = await startHttpUpstream((_hit, res) => {
      res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" });
      res.end();
    });
    await h.addService({ id: "redirector", hosts: ["redirect.test"], scheme: "http", ports: [redirecting.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    const { token: t2 } = await h.newTask("unlisted: deny\nrules:\n  - service: redirector\n    effects: [read]\n");
    const res = await viaProxy(h.proxyPort, `http://redirect.test:${redirecting.port}/go`, { token: t2 });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe("http://169.254.169.254/latest/meta-data/");
    expect(redirecting.hits).toHaveLength(1);
    await redirecting.close();
  });
});
