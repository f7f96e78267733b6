/**
 * The attacker holds a valid token, our public JWKS, and their own keys. Each forged token must be
 * rejected with its own reason, before any key lookup where the header alone decides.
 */
import { createPublicKey } from "node:crypto";
import { generateKeyPair } from "jose";
import { beforeAll, describe, expect, it, vi } from "vitest";
import type { KeyResolver } from "@/lib/identity/key-ring";
import { verifyTaskToken } from "@/lib/identity/token";
import { b64url, decodeSegment, expectReason, fixedResolver, hs256, json64, makeFixture, signWith, type Fixture } from "./helpers";

let f: Fixture;
let valid: string;

beforeAll(async () => {
  f = await makeFixture();
  valid = await f.mint();
});

describe("algorithm confusion", () => {
  it("accepts the genuine token (control)", async () => {
    const verified = await verifyTaskToken(valid, f.options());
    expect(verified.agentId).toBe("agent_01");
  });

  it.each(["none", "None", "NONE", "nOnE"])("rejects alg %s with an empty signature", async (alg) => {
    const token = `${json64(f.header({ alg }))}.${json64(f.claims())}.`;
    await expectReason(verifyTaskToken(token, f.options()), "alg_not_allowed", token);
  });

  it("rejects alg none even when a signature is appended", async () => {
    const real = valid.split(".")[2] ?? "";
    const token = `${json64(f.header({ alg: "none" }))}.${json64(f.claims())}.${real}`;
    await expectReason(verifyTaskToken(token, f.options()), "alg_not_allowed", token);
  });

  it("rejects a token without alg", async () => {
    const h = f.header();
    delete h.alg;
    const token = `${json64(h)}.${json64(f.claims())}.${valid.split(".")[2]}`;
    await expectReason(verifyTaskToken(token, f.options()), "alg_not_allowed");
  });

  it("rejects HS256 MACed with the public key's x (text and raw bytes)", async () => {
    const x = f.signing.publicJwk.x;
    for (const secret of [x, Buffer.from(x, "base64url")]) {
      const token = hs256(f.header({ alg: "HS256" }), f.claims(), secret);
      await expectReason(verifyTaskToken(token, f.options()), "alg_not_allowed", token);
    }
  });

  it("rejects HS256 MACed with the public key as PEM / SPKI DER / JWK JSON", async () => {
    const pub = createPublicKey({ key: { ...f.signing.publicJwk }, format: "jwk" });
    const pem = pub.export({ type: "spki", format: "pem" });
    const der = pub.export({ type: "spki", format: "der" });
    for (const secret of [pem, der, JSON.stringify(f.signing.publicJwk)]) {
      const token = hs256(f.header({ alg: "HS256" }), f.claims(), secret);
      await expectReason(verifyTaskToken(token, f.options()), "alg_not_allowed", token);
    }
  });

  it("rejects an HMAC placed under alg EdDSA (signature check, not MAC)", async () => {
    const token = hs256(f.header(), f.claims(), f.signing.publicJwk.x);
    await expectReason(verifyTaskToken(token, f.options()), "signature_invalid", token);
  });

  it("rejects RS256 / ES256 / PS256 signed with the attacker's own key", async () => {
    for (const alg of ["RS256", "ES256", "PS256"]) {
      const attacker = await generateKeyPair(alg);
      const token = await signWith(attacker.privateKey, f.header({ alg }), f.claims());
      await expectReason(verifyTaskToken(token, f.options()), "alg_not_allowed", token);
    }
  });

  it("rejects the fully-specified 'Ed25519' alg name too (one spelling is pinned)", async () => {
    const token = await signWith(f.privateKey, f.header({ alg: "Ed25519" }), f.claims());
    await expectReason(verifyTaskToken(token, f.options()), "alg_not_allowed", token);
  });
});

describe("keys named by the token", () => {
  let attacker: { privateKey: CryptoKey; publicKey: CryptoKey };
  let attackerJwk: Record<string, unknown>;
  beforeAll(async () => {
    attacker = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const { exportJWK } = await import("jose");
    attackerJwk = { ...(await exportJWK(attacker.publicKey)) };
  });

  const cases: [string, () => Record<string, unknown>][] = [
    ["jku", () => ({ jku: "https://attacker.example/jwks.json" })],
    ["x5u", () => ({ x5u: "https://attacker.example/cert.pem" })],
    ["jwk", () => ({ jwk: attackerJwk })],
    ["x5c", () => ({ x5c: ["MIIBattacker"] })],
    ["crit", () => ({ crit: ["exp"] })],
  ];

  it.each(cases)("rejects a %s header on a token signed by the attacker's key", async (name, extra) => {
    const resolver = vi.fn(f.keySet.resolver);
    for (const kid of [f.signing.kid, "bk_attackerAAAAAAAA"]) {
      const token = await signWith(attacker.privateKey, f.header({ kid, ...extra() }), f.claims());
      const err = await expectReason(verifyTaskToken(token, f.options({ keys: resolver })), "header_key_forbidden", token);
      expect(err.field).toBe(name);
    }
    expect(resolver).not.toHaveBeenCalled();
  });

  it("rejects a kid-less token that carries an embedded jwk", async () => {
    const h = f.header({ jwk: attackerJwk });
    delete h.kid;
    const token = await signWith(attacker.privateKey, h, f.claims());
    await expectReason(verifyTaskToken(token, f.options()), "header_key_forbidden", token, "jwk");
  });

  it("rejects unknown extra header members", async () => {
    const token = await signWith(f.privateKey, f.header({ "x-evil": "1" }), f.claims());
    await expectReason(verifyTaskToken(token, f.options()), "header_key_forbidden", token, "unexpected");
  });

  it("rejects the attacker's key under our kid (plain signature forgery)", async () => {
    const token = await signWith(attacker.privateKey, f.header(), f.claims());
    await expectReason(verifyTaskToken(token, f.options()), "signature_invalid", token);
  });
});

describe("kid", () => {
  it("requires a kid", async () => {
    const h = f.header();
    delete h.kid;
    const token = await signWith(f.privateKey, h, f.claims());
    await expectReason(verifyTaskToken(token, f.options()), "kid_missing", token);
  });

  it.each([
    "../../x",
    "' OR 1=1--",
    "bk_../../etc/passwd",
    "bk_AAAAAAAAAAAAAAA%2f",
    "bk_AAAAAAAAAAAAAAAAA",
    "bk_AAAAAAAAAAAAAAA",
    "BK_AAAAAAAAAAAAAAAA",
    "bk_AAAAAAAAAAAAAAAA\n",
    "bk_ÀAAAAAAAAAAAAAAA",
    "",
    "https://attacker.example/key",
  ])("rejects kid %j by shape before any lookup", async (kid) => {
    const resolver = vi.fn<KeyResolver>(f.keySet.resolver);
    const token = await signWith(f.privateKey, f.header({ kid }), f.claims());
    const err = await expectReason(verifyTaskToken(token, f.options({ keys: resolver })), "kid_invalid", token);
    if (kid.length > 3) expect(err.message).not.toContain(kid);
    expect(resolver).not.toHaveBeenCalled();
  });

  it.each([123, null, ["bk_AAAAAAAAAAAAAAAA"], { $ne: "" }])("rejects non-string kid %j", async (kid) => {
    const resolver = vi.fn<KeyResolver>(f.keySet.resolver);
    const token = await signWith(f.privateKey, f.header({ kid }), f.claims());
    await expectReason(verifyTaskToken(token, f.options({ keys: resolver })), "kid_invalid", token);
    expect(resolver).not.toHaveBeenCalled();
  });

  it("rejects a well-formed but unknown kid", async () => {
    const token = await signWith(f.privateKey, f.header({ kid: "bk_AAAAAAAAAAAAAAAA" }), f.claims());
    await expectReason(verifyTaskToken(token, f.options()), "kid_unknown", token);
  });

  it("rejects a token signed by a retired key", async () => {
    const resolved = f.keySet.resolve(f.signing.kid, new Date());
    expect(resolved).toBeDefined();
    const keys = fixedResolver(f.signing.kid, resolved!.key as CryptoKey, "retired");
    await expectReason(verifyTaskToken(valid, f.options({ keys })), "key_retired", valid);
  });
});

describe("tampering", () => {
  it("rejects re-encoded claims under the original signature", async () => {
    const [h, p, s] = valid.split(".") as [string, string, string];
    const widened = [{ scope: "*:*:irreversible" }, { scope: "railway:production:irreversible" }, { scope: "railway:staging:write" }, { scope: "" }];
    for (const change of [{ task: "task_02" }, { sub: "agent_02" }, { exp: (decodeSegment(p).exp as number) + 86_400 }, ...widened]) {
      const token = `${h}.${json64({ ...decodeSegment(p), ...change })}.${s}`;
      await expectReason(verifyTaskToken(token, f.options()), "signature_invalid", token);
    }
  });

  it("rejects a re-encoded header under the original signature", async () => {
    const [, p, s] = valid.split(".") as [string, string, string];
    const token = `${json64({ typ: "bulkhead-task+jwt", alg: "EdDSA", kid: f.signing.kid })}.${p}.${s}`;
    await expectReason(verifyTaskToken(token, f.options()), "signature_invalid", token);
  });

  it("rejects a flipped signature byte, a truncated and a non-canonical signature", async () => {
    const [h, p, s] = valid.split(".") as [string, string, string];
    const bytes = Buffer.from(s, "base64url");
    bytes[10] = (bytes[10] ?? 0) ^ 1;
    const last = s.at(-1) === "A" ? "B" : "A"; // same decoded bytes for some, still refused
    for (const sig of [b64url(bytes), s.slice(0, -2), `${s.slice(0, -1)}${last}`, `${s}AA`]) {
      await expectReason(verifyTaskToken(`${h}.${p}.${sig}`, f.options()), "signature_invalid");
    }
  });

  it.each([
    ["empty", ""],
    ["two segments", "a.b"],
    ["four segments", `${valid}.x`],
    ["padding", `${valid}=`],
    ["whitespace", ` ${valid}`],
    ["header not JSON", `${b64url("not json")}.${json64({})}.AAAA`],
    ["header is an array", `${json64(["EdDSA"])}.${json64({})}.AAAA`],
    ["huge", `${json64({ alg: "EdDSA" })}.${"A".repeat(5000)}.AAAA`],
  ])("rejects a structurally malformed token (%s)", async (_name, token) => {
    await expectReason(verifyTaskToken(token, f.options()), "malformed");
  });
});
