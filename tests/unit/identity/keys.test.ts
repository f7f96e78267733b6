import { describe, expect, it } from "vitest";
import { generateMasterKey, parseMasterKey, SecretIntegrityError } from "@/lib/crypto/envelope";
import { VerificationKeySet } from "@/lib/identity/key-ring";
import {
  beginRetirement,
  generateSigningKey,
  importPrivateSigningKey,
  importPublicSigningKey,
  keyStatusAt,
  KID_PATTERN,
  openPrivateJwk,
  pickSigningKey,
  sealPrivateJwk,
  toJwks,
  type SigningKeyLifecycle,
} from "@/lib/identity/keys";
import { NOW } from "./helpers";

const at = (s: number) => new Date(NOW.getTime() + s * 1000);

function life(over: Partial<SigningKeyLifecycle> = {}): SigningKeyLifecycle {
  return { kid: "bk_AAAAAAAAAAAAAAAA", createdAt: at(-100), retiringAt: null, verifyUntil: null, retiredAt: null, ...over };
}

describe("signing keys", () => {
  it("generates Ed25519 keys with a random, url-safe kid", async () => {
    const a = await generateSigningKey(NOW);
    const b = await generateSigningKey(NOW);
    expect(a.kid).toMatch(KID_PATTERN);
    expect(a.kid).not.toBe(b.kid);
    expect(a.alg).toBe("EdDSA");
    expect(a.publicJwk).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig", kid: a.kid });
    expect(a.privateJwk.d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.createdAt.getTime()).toBe(NOW.getTime());
  });

  it("publishes a JWKS with public members only, even when handed private JWKs", async () => {
    const keys = [await generateSigningKey(NOW), await generateSigningKey(NOW)];
    const jwks = toJwks(keys.map((k) => ({ kid: k.kid, publicJwk: { ...k.privateJwk, kid: k.kid } })));
    const text = JSON.stringify(jwks);
    expect(text).not.toContain('"d"');
    for (const k of keys) expect(text).not.toContain(k.privateJwk.d);
    for (const jwk of jwks.keys) expect(Object.keys(jwk).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x"]);
  });

  it("imports keys with the algorithm pinned and refuses the wrong half or type", async () => {
    const k = await generateSigningKey(NOW);
    expect((await importPublicSigningKey(k.publicJwk)).algorithm.name).toBe("Ed25519");
    expect((await importPrivateSigningKey(k.privateJwk)).type).toBe("private");
    await expect(importPublicSigningKey(k.privateJwk)).rejects.toThrow(TypeError);
    await expect(importPrivateSigningKey(k.publicJwk)).rejects.toThrow(TypeError);
    await expect(importPublicSigningKey({ kty: "oct", k: "AAAA" })).rejects.toThrow(TypeError);
    await expect(importPublicSigningKey({ kty: "OKP", crv: "X25519", x: k.publicJwk.x })).rejects.toThrow(TypeError);
  });

  it("seals the private JWK under the master key, bound to its kid", async () => {
    const k = await generateSigningKey(NOW);
    const master = parseMasterKey(generateMasterKey());
    const sealed = sealPrivateJwk(k.kid, k.privateJwk, master);
    expect(sealed).not.toContain(k.privateJwk.d);
    expect(openPrivateJwk(k.kid, sealed, master)).toEqual(k.privateJwk);
    expect(() => openPrivateJwk("bk_BBBBBBBBBBBBBBBB", sealed, master)).toThrow(SecretIntegrityError);
  });
});

describe("key lifecycle", () => {
  it("active until retiring, retiring until verifyUntil (+5 s grace), then retired", () => {
    const k = life({ retiringAt: at(10), verifyUntil: at(310) });
    expect(keyStatusAt(k, at(0))).toBe("active");
    expect(keyStatusAt(k, at(10))).toBe("retiring");
    expect(keyStatusAt(k, at(314.9))).toBe("retiring");
    expect(keyStatusAt(k, at(315))).toBe("retired");
  });

  it("forced retirement wins at once", () => {
    expect(keyStatusAt(life({ retiredAt: at(5) }), at(5))).toBe("retired");
    expect(keyStatusAt(life({ retiringAt: at(0), verifyUntil: at(999), retiredAt: at(5) }), at(6))).toBe("retired");
  });

  it("beginRetirement keeps verifying for the longest outstanding token", () => {
    const k = life();
    const r1 = beginRetirement(k, NOW, { latestTokenExpiry: at(900), maxTokenTtlSeconds: 300 });
    expect(r1.retiringAt?.getTime()).toBe(NOW.getTime());
    expect(r1.verifyUntil?.getTime()).toBe(at(900).getTime());
    const r2 = beginRetirement(k, NOW, { latestTokenExpiry: null, maxTokenTtlSeconds: 300 });
    expect(r2.verifyUntil?.getTime()).toBe(at(300).getTime());
    expect(keyStatusAt(r2, NOW)).toBe("retiring");
  });

  it("pickSigningKey chooses the newest active key", () => {
    const old = life({ kid: "bk_old_AAAAAAAAAAAA", createdAt: at(-500) });
    const fresh = life({ kid: "bk_new_AAAAAAAAAAAA", createdAt: at(-5) });
    const retiring = life({ kid: "bk_ret_AAAAAAAAAAAA", createdAt: at(-1), retiringAt: at(-1), verifyUntil: at(100) });
    expect(pickSigningKey([old, fresh, retiring], NOW)?.kid).toBe(fresh.kid);
    expect(pickSigningKey([retiring], NOW)).toBeUndefined();
  });
});

describe("VerificationKeySet", () => {
  it("resolves status at the given time and publishes only keys that still verify", async () => {
    const a = await generateSigningKey(at(-1000));
    const b = await generateSigningKey(at(-10));
    const set = await VerificationKeySet.fromRecords([
      { kid: a.kid, createdAt: a.createdAt, retiringAt: at(-10), verifyUntil: at(290), retiredAt: null, publicJwk: a.publicJwk },
      { kid: b.kid, createdAt: b.createdAt, retiringAt: null, verifyUntil: null, retiredAt: null, publicJwk: b.publicJwk },
    ]);
    expect(set.resolve(a.kid, NOW)?.status).toBe("retiring");
    expect(set.resolve(a.kid, at(400))?.status).toBe("retired");
    expect(set.resolve(b.kid, NOW)?.status).toBe("active");
    expect(set.resolve("bk_AAAAAAAAAAAAAAAA", NOW)).toBeUndefined();
    expect(set.jwks(NOW).keys.map((k) => k.kid).sort()).toEqual([a.kid, b.kid].sort());
    expect(set.jwks(at(400)).keys.map((k) => k.kid)).toEqual([b.kid]);
  });

  it("leaves out a record with a private member, a bad kid or a key that will not import, and keeps the others", async () => {
    const a = await generateSigningKey(NOW);
    const b = await generateSigningKey(NOW);
    const set = await VerificationKeySet.fromRecords([
      { kid: a.kid, createdAt: NOW, retiringAt: null, verifyUntil: null, retiredAt: null, publicJwk: a.publicJwk },
    ]);
    const base = { createdAt: NOW, retiringAt: null, verifyUntil: null, retiredAt: null };
    const { unusable } = await set.replace([
      { ...base, kid: a.kid, publicJwk: { ...a.privateJwk } },
      { ...base, kid: "../x", publicJwk: a.publicJwk },
      { ...base, kid: "bk_BBBBBBBBBBBBBBBB", publicJwk: { kty: "OKP", crv: "Ed25519" } as never },
      { ...base, kid: b.kid, publicJwk: b.publicJwk },
    ]);
    expect(unusable.map((u) => u.kid)).toEqual([a.kid, "../x", "bk_BBBBBBBBBBBBBBBB"]);
    // A private JWK never becomes a verification key: a token naming its kid finds none.
    expect(set.resolve(a.kid, NOW)).toBeUndefined();
    expect(set.resolve("bk_BBBBBBBBBBBBBBBB", NOW)).toBeUndefined();
    // One bad row no longer takes every other key with it.
    expect(set.resolve(b.kid, NOW)?.status).toBe("active");
  });
});
