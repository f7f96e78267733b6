/**
 * Layer 1 on its own: the task's scope, carried in its token, refuses every action outside it
 * before any policy is consulted, under a policy that allows everything (approvals waived), for
 * every effect and environment boundary, through the real proxy, with real upstreams that count
 * what reaches them. Written from the attacker's side: the agent holds a valid token and tries to
 * reach past its scope by every route a request can take.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseScope } from "@/lib/identity/scope";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { EFFECTS, type Effect } from "@/lib/semantics/types";
import { identity, onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { connectTunnel, exchange, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const ALLOW_ALL = "unlisted: deny\nrules:\n  - service: '*'\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n";
const HOLD_ALL = "unlisted: hold\nrules: []\n";
const REPORT = "mode: report\nunlisted: deny\nrules: []\n";
const RAILWAY = "backboard.railway.com";

describe("task scope: refused before the policy, whatever the policy allows", () => {
  let h: ProxyHarness;
  let api: Upstream;
  let railway: Upstream;
  let opaque: Upstream;

  /** One request per effect on the REST service `api`: GET read, POST write, DELETE destructive, POST /purge irreversible. */
  const request: Record<Effect, { method: string; path: string }> = {
    read: { method: "GET", path: "/items" },
    write: { method: "POST", path: "/items" },
    destructive: { method: "DELETE", path: "/items/1" },
    irreversible: { method: "POST", path: "/purge" },
  };
  const send = (token: string, host: string, effect: Effect, headers: Record<string, string> = {}) =>
    viaProxy(h.proxyPort, `http://${host}:${api.port}${request[effect].path}`, {
      token,
      method: request[effect].method,
      headers: { "content-type": "application/json", ...headers },
      body: request[effect].method === "POST" ? "{}" : undefined,
    });
  const graphql = (token: string, query: string) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) });

  beforeAll(async () => {
    api = await startHttpUpstream();
    railway = await startHttpUpstream();
    opaque = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({
      id: "api",
      hosts: ["api.stg.test", "api.dev.test", "api.prod.test"],
      scheme: "http",
      ports: [api.port],
      protocol: "rest",
      rest: { routes: [{ method: "POST", path: "/purge", operation: "purge", effect: "irreversible" }] },
      proxy: { internalAddresses: ["127.0.0.1/32"] },
    });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.addService({ id: "opaque", hosts: ["opaque.test"], scheme: "https", ports: [opaque.port], protocol: "rest", proxy: { tls: "passthrough", internalAddresses: ["127.0.0.1/32"] } });
    await h.t.db.setting.create({
      data: {
        key: "inventory.yaml",
        value:
          "entries:\n  - environment: staging\n    hosts: [api.stg.test]\n  - environment: development\n    hosts: [api.dev.test]\n" +
          "  - environment: staging\n    service: railway\n    resources: [env_staging, vol_stg]\n  - environment: production\n    service: railway\n    resources: [vol_prod, vol_prod_backup]\n",
      },
    });
    await h.sync();
  });
  afterAll(async () => {
    await h.close();
    await Promise.all([api.close(), railway.close(), opaque.close()]);
  });

  it("every effect boundary: above the scope's effect is refused with token_scope under an allow-all policy; nothing reaches the upstream", async () => {
    for (const [ceilingIndex, ceiling] of EFFECTS.entries()) {
      const { token } = await h.newTask(ALLOW_ALL, { scope: `api:staging:${ceiling}` });
      for (const [i, effect] of EFFECTS.entries()) {
        const before = api.hits.length;
        const r = await send(token, "api.stg.test", effect);
        if (i <= ceilingIndex) {
          expect(r.status, `${effect} under ${ceiling}`).toBe(200);
          expect(api.hits.length).toBe(before + 1);
        } else {
          expect(r.status, `${effect} under ${ceiling}`).toBe(403);
          expect(r.json, `${effect} under ${ceiling}`).toMatchObject({ error: "token_scope", kind: "denied", layer: "identity", scope: `api:staging:${ceiling}` });
          expect(String(r.json?.reason)).toMatch(new RegExp(`^token_scope: ${effect} .*outside the task's scope \\(api:staging:${ceiling}\\)`));
          expect(api.hits.length, `${effect} under ${ceiling} reached the upstream`).toBe(before);
        }
      }
    }
  });

  it("every environment boundary: another environment, production, or one the inventory does not know is outside", async () => {
    const { token } = await h.newTask(ALLOW_ALL, { scope: "api:staging:irreversible" });
    const before = api.hits.length;
    for (const host of ["api.prod.test", "api.dev.test"]) {
      for (const effect of EFFECTS) {
        const r = await send(token, host, effect);
        expect(r.status, `${effect} on ${host}`).toBe(403);
        expect(r.json?.error).toBe("token_scope");
      }
    }
    expect(api.hits.length).toBe(before);
    expect((await send(token, "api.stg.test", "irreversible")).status).toBe(200);

    // Two environments named, one not: still refused there; `*` names them all.
    const two = await h.newTask(ALLOW_ALL, { scope: "api:staging:read api:development:read" });
    expect((await send(two.token, "api.dev.test", "read")).status).toBe(200);
    expect((await send(two.token, "api.prod.test", "read")).json?.error).toBe("token_scope");
    const any = await h.newTask(ALLOW_ALL, { scope: "api:*:read" });
    expect((await send(any.token, "api.prod.test", "read")).status).toBe(200);
    expect((await send(any.token, "api.prod.test", "write")).json?.error).toBe("token_scope");
  });

  it("services and hosts the scope does not name are outside, known or unknown", async () => {
    const { token } = await h.newTask(ALLOW_ALL, { scope: "api:*:irreversible" });
    const before = railway.hits.length;
    const rw = await graphql(token, 'query { environment(id: "env_staging") { id } }');
    expect(rw.status).toBe(403);
    expect(rw.json?.error).toBe("token_scope");
    expect(railway.hits.length).toBe(before);
    // A host no service describes: the service `unknown`, which only `unknown` or `*` names.
    const unknown = await viaProxy(h.proxyPort, `http://elsewhere.test:${api.port}/items`, { token });
    expect(unknown.status).toBe(403);
    expect(unknown.json?.error).toBe("token_scope");
    expect(String(unknown.json?.reason)).toMatch(/read `GET \/items` on production/);
    const none = await h.newTask(ALLOW_ALL, { scope: "none" });
    expect((await send(none.token, "api.stg.test", "read")).json?.error).toBe("token_scope");
  });

  it("the PocketOS request: volumeDelete on production and its backup under allow-all, and the scope's own effect limit on staging", async () => {
    const { token } = await h.newTask(ALLOW_ALL, { scope: "railway:staging:read" });
    const before = railway.hits.length;
    for (const query of [
      'mutation { volumeDelete(volumeId: "vol_prod") }',
      'mutation { a: volumeDelete(volumeId: "vol_prod") b: volumeDelete(volumeId: "vol_prod_backup") }',
      'mutation { volumeDelete(volumeId: "vol_stg") }',
    ]) {
      const r = await graphql(token, query);
      expect(r.status, query).toBe(403);
      expect(r.json?.error, query).toBe("token_scope");
    }
    expect(railway.hits.length).toBe(before);
    const read = await graphql(token, 'query { environment(id: "env_staging") { id } }');
    expect(read.status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });

  it("is not held for a human, and report mode does not lift it", async () => {
    const before = api.hits.length;
    for (const policy of [HOLD_ALL, REPORT]) {
      const { token, taskId } = await h.newTask(policy, { scope: "api:staging:read" });
      const started = Date.now();
      const r = await send(token, "api.stg.test", "irreversible");
      expect(r.status, policy).toBe(403);
      expect(r.json?.error).toBe("token_scope");
      expect(Date.now() - started).toBeLessThan(2500); // answered at once, not after a hold timeout
      expect(await h.t.db.approval.count({ where: { taskId } })).toBe(0);
    }
    expect(api.hits.length).toBe(before);
  });

  it("every refusal is audited with its layer and reason, and the decision never names a rule", async () => {
    const { token, taskId } = await h.newTask(ALLOW_ALL, { scope: "api:staging:read" });
    const r = await send(token, "api.prod.test", "destructive");
    expect(r.json?.auditEventId).toBeTruthy();
    const event = (await h.events()).find((e) => e.data.eventId === r.json?.auditEventId);
    expect(event).toMatchObject({ type: "proxy.decision", outcome: "deny" });
    expect(event?.reason).toMatch(/^token_scope: destructive .* on production .*outside the task's scope \(api:staging:read\)/);
    expect(event?.data).toMatchObject({ code: "token_scope", layer: "identity", scope: "api:staging:read", kind: "denied" });
    const row = await h.t.db.auditEvent.findFirstOrThrow({ where: { taskId, type: "proxy.decision", outcome: "deny" } });
    expect(row.ruleId).toBeNull();
    expect(row.effect).toBe("destructive");
  });

  it("a passthrough tunnel (irreversible `tunnel`) is judged the same way", async () => {
    const narrow = await h.newTask(ALLOW_ALL, { scope: "opaque:*:destructive" });
    const refused = await connectTunnel(h.proxyPort, `opaque.test:${opaque.port}`, { "proxy-authorization": `Bearer ${narrow.token}` });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain("token_scope");
    refused.socket.destroy();
    const wide = await h.newTask(ALLOW_ALL, { scope: "opaque:*:irreversible" });
    const allowed = await connectTunnel(h.proxyPort, `opaque.test:${opaque.port}`, { "proxy-authorization": `Bearer ${wide.token}` });
    expect(allowed.status).toBe(200);
    allowed.socket.destroy();
  });

  it("a sandbox-authenticated request carries its task's scope", async () => {
    const { taskId } = await h.newTask(ALLOW_ALL, { scope: "api:staging:read" });
    await h.t.db.sandbox.create({ data: { taskId, name: "scoped-sandbox", sourceAddress: "127.0.0.6" } });
    await h.sync();
    const from = async () => {
      const socket = net.connect({ host: "127.0.0.1", port: h.transparentHttpPort, localAddress: "127.0.0.6" });
      await new Promise((r) => socket.once("connect", r));
      return socket;
    };
    const before = api.hits.length;
    expect(statuses(await exchange(await from(), `GET /items HTTP/1.1\r\nHost: api.stg.test:${api.port}\r\nConnection: close\r\n\r\n`))).toEqual([200]);
    const write = await exchange(await from(), `POST /items HTTP/1.1\r\nHost: api.stg.test:${api.port}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(statuses(write)).toEqual([403]);
    expect(write).toContain("token_scope");
    const prod = await exchange(await from(), `GET /items HTTP/1.1\r\nHost: api.prod.test:${api.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(prod)).toEqual([403]);
    expect(prod).toContain("token_scope");
    expect(api.hits.length).toBe(before + 1);
  });

  describe("the scope cannot be widened after the task is created", () => {
    it("widening the policy widens nothing: the scope still refuses", async () => {
      const { token, taskId } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    environments: [staging]\n    effects: [read]\n");
      expect((await h.t.db.task.findUniqueOrThrow({ where: { id: taskId } })).scope).toBe("api:staging:read");
      await updateTaskPolicy(h.t.db, h.admin, taskId, ALLOW_ALL);
      await h.sync();
      for (const [host, effect] of [["api.stg.test", "write"], ["api.prod.test", "read"], ["api.stg.test", "irreversible"]] as const) {
        expect((await send(token, host, effect)).json?.error, `${effect} on ${host}`).toBe("token_scope");
      }
      // A new token for the same task carries the same scope.
      const fresh = await issueTaskToken(h.t.db, h.admin, h.keys.dashboardKey, identity, taskId);
      await h.sync();
      expect((await send(fresh.token, "api.stg.test", "write")).json?.error).toBe("token_scope");
      expect((await h.t.db.task.findUniqueOrThrow({ where: { id: taskId } })).scope).toBe("api:staging:read");
    });

    it("a task row widened behind Bulkhead's back: the old token keeps its old scope; only a new token carries the new one", async () => {
      const { token, taskId } = await h.newTask(ALLOW_ALL, { scope: "api:staging:read" });
      // No Bulkhead path writes a task's scope after creation; this plays someone editing the row.
      await h.t.db.$executeRaw`UPDATE tasks SET scope = 'api:*:irreversible' WHERE id = ${taskId}::uuid`;
      await h.sync();
      const before = api.hits.length;
      for (const [host, effect] of [["api.prod.test", "read"], ["api.stg.test", "write"]] as const) {
        expect((await send(token, host, effect)).json?.error, `${effect} on ${host}`).toBe("token_scope");
      }
      expect(api.hits.length).toBe(before);
      expect((await send(token, "api.stg.test", "read")).status).toBe(200);
      const fresh = await issueTaskToken(h.t.db, h.admin, h.keys.dashboardKey, identity, taskId);
      await h.sync();
      expect((await send(fresh.token, "api.prod.test", "read")).status).toBe(200);
    });

    it("a token whose claim is wider than its task's scope is refused outright (407 token_scope_mismatch)", async () => {
      const { token, taskId } = await h.newTask(ALLOW_ALL, { scope: "api:*:write" });
      await h.t.db.$executeRaw`UPDATE tasks SET scope = 'api:staging:read' WHERE id = ${taskId}::uuid`;
      await h.sync();
      const before = api.hits.length;
      const r = await send(token, "api.stg.test", "read");
      expect(r.status).toBe(407);
      expect(r.json?.error).toBe("token_scope_mismatch");
      await h.t.db.$executeRaw`UPDATE tasks SET scope = 'not a scope' WHERE id = ${taskId}::uuid`;
      await h.sync();
      expect((await send(token, "api.stg.test", "read")).json?.error).toBe("token_scope_mismatch");
      expect(api.hits.length).toBe(before);
    });

    it("a token whose scope claim was rewritten fails signature verification", async () => {
      const { token } = await h.newTask(ALLOW_ALL, { scope: "api:staging:read" });
      const [header, payload, signature] = token.split(".") as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
      const before = api.hits.length;
      for (const scope of ["*:*:irreversible", "api:*:irreversible", "api:staging:write"]) {
        expect(parseScope(scope).ok).toBe(true);
        const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, scope })).toString("base64url")}.${signature}`;
        const r = await send(forged, "api.prod.test", "read");
        expect(r.status, scope).toBe(407);
        expect(r.json?.error).toBe("token_signature_invalid");
      }
      expect(api.hits.length).toBe(before);
    });
  });
});
