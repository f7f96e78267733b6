/** The cache must be a pure speed-up: it can never say yes where a full verification says no. */
import { beforeEach, describe, expect, it } from "vitest";
import { VerificationKeySet, type KeyResolver } from "@/lib/identity/key-ring";
import { RevocationSet } from "@/lib/identity/revocation";
import { hashToken, VerifiedTokenCache } from "@/lib/identity/token-cache";
import { AGENT, AUDIENCE, expectReason, fixedResolver, ISSUER, makeFixture, NOW, TASK, type Fixture } from "./helpers";

let f: Fixture;
let revocation: RevocationSet;
let keys: KeyResolver;
let cache: VerifiedTokenCache;

const at = (s: number) => new Date(NOW.getTime() + s * 1000);

function newCache(maxEntries?: number, resolver: KeyResolver = (kid, now) => keys(kid, now)) {
  return new VerifiedTokenCache({
    verify: { issuer: ISSUER, audience: AUDIENCE, keys: resolver, revocation },
    maxEntries,
  });
}

beforeEach(async () => {
  f ??= await makeFixture();
  revocation = new RevocationSet();
  keys = f.keySet.resolver;
  cache = newCache();
});

describe("VerifiedTokenCache", () => {
  it("verifies once, then answers from the cache with the same result", async () => {
    const t = await f.mint();
    const first = await cache.check(t, NOW);
    const second = await cache.check(t, at(1));
    expect(second).toBe(first);
    expect(cache.hits).toBe(1);
    expect(cache.misses).toBe(1);
    expect(cache.lookup(t, at(2))).toBe(first);
  });

  it("after revokeTask the very next check fails", async () => {
    const t = await f.mint();
    await cache.check(t, NOW);
    revocation.revokeTask(TASK);
    expect(cache.lookup(t, NOW)).toBeUndefined();
    await expectReason(cache.check(t, NOW), "task_revoked", t);
  });

  it("after suspendAgent the very next check fails; reinstating lets it verify again", async () => {
    const t = await f.mint();
    await cache.check(t, NOW);
    revocation.suspendAgent(AGENT);
    await expectReason(cache.check(t, NOW), "agent_suspended", t);
    revocation.reinstateAgent(AGENT);
    await expect(cache.check(t, NOW)).resolves.toMatchObject({ agentId: AGENT });
  });

  it("after revokeJti or a replaceAll snapshot the very next check fails", async () => {
    const t = await f.mint();
    const { jti } = await cache.check(t, NOW);
    revocation.revokeJti(jti);
    await expectReason(cache.check(t, NOW), "jti_revoked");
    revocation.replaceAll({ revokedTasks: [], suspendedAgents: [], revokedJtis: [] });
    await cache.check(t, NOW);
    revocation.replaceAll({ revokedTasks: [TASK], suspendedAgents: [], revokedJtis: [] });
    await expectReason(cache.check(t, NOW), "task_revoked");
  });

  it("asks a revocation view that does not count its changes on every lookup", async () => {
    let revoked = false;
    const view = { isTaskRevoked: () => revoked, isAgentSuspended: () => false, isJtiRevoked: () => false };
    const c = new VerifiedTokenCache({ verify: { issuer: ISSUER, audience: AUDIENCE, keys, revocation: view } });
    const t = await f.mint();
    await c.check(t, NOW);
    expect(c.lookup(t, at(1))).toBeDefined();
    expect(c.lookup(t, at(2))).toBeDefined();
    revoked = true;
    expect(c.lookup(t, at(3))).toBeUndefined();
    await expectReason(c.check(t, at(4)), "task_revoked");
  });

  it("re-asks the revocation Sets after every change, however many hits came before", async () => {
    const t = await f.mint();
    await cache.check(t, NOW);
    for (let i = 0; i < 5; i++) expect(cache.lookup(t, at(1))).toBeDefined();
    revocation.revokeTask("some_other_task");
    expect(cache.lookup(t, at(2))).toBeDefined();
    revocation.prune(at(2));
    revocation.suspendAgent(AGENT);
    expect(cache.lookup(t, at(3))).toBeUndefined();
    revocation.reinstateAgent(AGENT);
    await cache.check(t, at(4));
    expect(cache.lookup(t, at(5))).toBeDefined();
    revocation.replaceAll({ revokedTasks: [TASK], suspendedAgents: [], revokedJtis: [] });
    expect(cache.lookup(t, at(6))).toBeUndefined();
  });

  it("does not serve a cached token at or past its exp; the full check then decides (tolerance)", async () => {
    const t = await f.mint({ ttlSeconds: 60 });
    await cache.check(t, NOW);
    expect(cache.lookup(t, at(59.9))).toBeDefined();
    expect(cache.lookup(t, at(60))).toBeUndefined();
    await expect(cache.check(t, at(62))).resolves.toBeDefined(); // within the 5 s tolerance
    await expectReason(cache.check(t, at(65)), "expired");
  });

  it("does not serve a cached token if the clock steps back before its nbf", async () => {
    const t = await f.mint();
    await cache.check(t, NOW);
    expect(cache.lookup(t, at(-6))).toBeUndefined();
    await expectReason(cache.check(t, at(-6)), "not_yet_valid");
  });

  it("does not outlive a key retirement or removal", async () => {
    const t = await f.mint();
    await cache.check(t, NOW);
    const key = f.keySet.resolve(f.signing.kid, NOW)!.key as CryptoKey;
    keys = fixedResolver(f.signing.kid, key, "retired");
    await expectReason(cache.check(t, NOW), "key_retired");
    keys = () => undefined;
    await expectReason(cache.check(t, NOW), "kid_unknown");
  });

  it("re-verifies after the key set is reloaded (new key objects)", async () => {
    const t = await f.mint();
    await cache.check(t, NOW);
    const reloaded = await VerificationKeySet.fromRecords([
      { kid: f.signing.kid, createdAt: f.signing.createdAt, retiringAt: null, verifyUntil: null, retiredAt: null, publicJwk: f.signing.publicJwk },
    ]);
    keys = reloaded.resolver;
    expect(cache.lookup(t, NOW)).toBeUndefined();
    await expect(cache.check(t, NOW)).resolves.toBeDefined();
    expect(cache.lookup(t, NOW)).toBeDefined();
  });

  it("does not cache failures", async () => {
    const forged = await f.signRaw(f.header(), f.claims({ aud: "other" }));
    await expectReason(cache.check(forged, NOW), "aud_mismatch");
    await expectReason(cache.check(forged, NOW), "aud_mismatch");
    expect(cache.size).toBe(0);
    expect(cache.misses).toBe(2);
  });

  it("a different string (tampered) never hits the entry of the genuine one", async () => {
    const t = await f.mint();
    await cache.check(t, NOW);
    const [h, , s] = t.split(".");
    const tampered = `${h}.${Buffer.from(JSON.stringify(f.claims({ task: "task_99" }))).toString("base64url")}.${s}`;
    await expectReason(cache.check(tampered, NOW), "signature_invalid");
  });

  it("a string sharing the genuine token's signature (header, payload or prefix changed) is verified in full and leaves the genuine entry alone", async () => {
    const t = await f.mint();
    const first = await cache.check(t, NOW);
    const [h, p, s] = t.split(".");
    const variants = [
      `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(h!, "base64url").toString()), typ: "x" })).toString("base64url")}.${p}.${s}`,
      `${h}.${Buffer.from(JSON.stringify(f.claims({ task: "task_99" }))).toString("base64url")}.${s}`,
      `x${t}`,
      `${p}.${s}`,
      `.${s}`,
      s!,
    ];
    for (const v of variants) {
      expect(cache.lookup(v, NOW)).toBeUndefined();
      await expect(cache.check(v, NOW)).rejects.toThrow();
      cache.invalidate(v);
    }
    expect(cache.size).toBe(1);
    const hits = cache.hits;
    expect(await cache.check(t, at(1))).toBe(first);
    expect(cache.hits).toBe(hits + 1);
    cache.invalidate(t);
    expect(cache.size).toBe(0);
  });

  it("is bounded and evicts the least recently used entry", async () => {
    const small = newCache(2);
    const [a, b, c] = [await f.mint({ taskId: "t_a" }), await f.mint({ taskId: "t_b" }), await f.mint({ taskId: "t_c" })];
    await small.check(a!, NOW);
    await small.check(b!, NOW);
    await small.check(a!, NOW); // a is now most recent
    await small.check(c!, NOW); // evicts b
    expect(small.size).toBe(2);
    expect(small.lookup(a!, NOW)).toBeDefined();
    expect(small.lookup(b!, NOW)).toBeUndefined();
    expect(small.lookup(c!, NOW)).toBeDefined();
    expect(small.sweep(at(3600))).toBe(2);
    expect(small.size).toBe(0);
  });

  it("refuses a clock tolerance above 5 s and a non-positive size", () => {
    expect(
      () => new VerifiedTokenCache({ verify: { issuer: ISSUER, audience: AUDIENCE, keys, revocation, clockToleranceSeconds: 60 } }),
    ).toThrow(RangeError);
    expect(() => newCache(0)).toThrow(RangeError);
  });

  it("hashToken is a stable SHA-256 that does not contain the token", async () => {
    const t = await f.mint();
    expect(hashToken(t)).toBe(hashToken(t));
    expect(hashToken(t)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(t).not.toContain(hashToken(t));
  });
});
