import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import { loadActiveSigningKey } from "@/lib/identity/key-store";
import { mintTaskToken, TASK_TOKEN_TYP } from "@/lib/identity/token";
import { identity, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * A token that is correctly signed is still refused when Bulkhead would never have minted it:
 * a lifetime beyond the one-hour maximum (as from a leaked signing key), or a jti that no row in
 * issued_tokens records (or records for another task). Written from the side of an attacker who
 * holds the signing key and mints tokens of their own.
 */
describe("task tokens Bulkhead never issued are refused by the proxy", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let task: { taskId: string; agentId: string; token: string };
  let other: { taskId: string; agentId: string; token: string };
  let origin: string;

  /** Signs a task token with Bulkhead's own signing key, as whoever holds that key could. */
  const forge = async (input: { taskId: string; agentId: string; ttlSeconds: number; now?: Date; jti?: string }) => {
    const key = await loadActiveSigningKey(h.t.db, h.keys.dashboardKey);
    const iat = Math.floor((input.now ?? new Date()).getTime() / 1000);
    // The task's own scope claim: everything about the token is right except what is under test.
    const { scope } = await h.t.db.task.findUniqueOrThrow({ where: { id: input.taskId }, select: { scope: true } });
    const claims = { iss: identity.issuer, aud: identity.audience, sub: input.agentId, task: input.taskId, scope, jti: input.jti ?? randomBytes(16).toString("base64url"), iat, nbf: iat, exp: iat + input.ttlSeconds };
    return new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", typ: TASK_TOKEN_TYP, kid: key!.kid }).sign(key!.privateKey);
  };
  const get = (token: string) => viaProxy(h.proxyPort, `${origin}/items`, { token });

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    const policy = "unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n";
    task = await h.newTask(policy);
    other = await h.newTask(policy);
    origin = `http://api.test:${up.port}`;
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  it("accepts the token Bulkhead issued (the control)", async () => {
    expect((await get(task.token)).status).toBe(200);
  });

  it("refuses a correctly signed 30-day token", async () => {
    const before = up.hits.length;
    const r = await get(await forge({ ...task, ttlSeconds: 30 * 86400 }));
    expect(r.status).toBe(407);
    expect(r.json).toMatchObject({ error: "token_lifetime_exceeded" });
    expect(up.hits.length).toBe(before);
  });

  it("refuses a token minted long ago whose lifetime reaches into the present", async () => {
    const r = await get(await forge({ ...task, ttlSeconds: 7 * 86400, now: new Date(Date.now() - 6 * 86400_000) }));
    expect(r.status).toBe(407);
    expect(r.json).toMatchObject({ error: "token_lifetime_exceeded" });
  });

  it("refuses a short-lived, correctly signed token whose jti was never issued", async () => {
    const before = up.hits.length;
    const r = await get(await forge({ ...task, ttlSeconds: 600 }));
    expect(r.status).toBe(407);
    expect(r.json).toMatchObject({ error: "token_jti_unknown" });
    expect(r.json?.auditEventId).toBeTruthy();
    expect(up.hits.length).toBe(before);
  });

  it("refuses an issued jti replayed in a token for another task", async () => {
    const issued = await h.t.db.issuedToken.findFirstOrThrow({ where: { taskId: other.taskId } });
    const r = await get(await forge({ ...task, ttlSeconds: 600, jti: issued.jti }));
    expect(r.status).toBe(407);
    expect(r.json).toMatchObject({ error: "token_jti_unknown" });
  });

  it("accepts a token issued a moment ago, before the worker's snapshot has caught up", async () => {
    // Written straight to the table, as another dashboard process would: no reload is awaited.
    const key = await loadActiveSigningKey(h.t.db, h.keys.dashboardKey);
    const now = new Date();
    const minted = await mintTaskToken({ ...identity, key: key!, agentId: task.agentId, taskId: task.taskId, scope: (await h.t.db.task.findUniqueOrThrow({ where: { id: task.taskId } })).scope, ttlSeconds: 600, taskEndsAt: new Date(now.getTime() + 3600_000), now });
    await h.t.db.issuedToken.create({ data: { jti: minted.jti, taskId: task.taskId, agentId: task.agentId, kid: key!.kid, issuedAt: minted.issuedAt, expiresAt: minted.expiresAt } });
    expect((await get(minted.token)).status).toBe(200);
  });

  it("refuses a token it has not heard of whose row is already revoked (its notifications lost), and keeps refusing it", async () => {
    const key = await loadActiveSigningKey(h.t.db, h.keys.dashboardKey);
    const now = new Date();
    const minted = await mintTaskToken({ ...identity, key: key!, agentId: task.agentId, taskId: task.taskId, scope: (await h.t.db.task.findUniqueOrThrow({ where: { id: task.taskId } })).scope, ttlSeconds: 600, taskEndsAt: new Date(now.getTime() + 3600_000), now });
    // Issued and revoked with the tables' triggers off for this transaction: no NOTIFY reaches the
    // worker, so the only thing that can tell it the token is revoked is the row it looks up.
    await h.t.adminDb().$transaction([
      h.t.adminDb().$executeRaw`SET LOCAL session_replication_role = replica`,
      h.t.adminDb().issuedToken.create({ data: { jti: minted.jti, taskId: task.taskId, agentId: task.agentId, kid: key!.kid, issuedAt: minted.issuedAt, expiresAt: minted.expiresAt, revokedAt: now } }),
    ]);
    const before = up.hits.length;
    for (let i = 0; i < 2; i++) {
      const r = await get(minted.token);
      expect(r.status).toBe(407);
      expect(r.json).toMatchObject({ error: "token_jti_revoked" });
    }
    expect(up.hits.length).toBe(before);
  });
});
