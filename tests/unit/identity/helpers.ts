/** Shared fixtures for task-token tests: a real key set plus tools to hand-craft hostile tokens. */
import { createHmac, KeyObject } from "node:crypto";
import { CompactSign } from "jose";
import { expect } from "vitest";
import { TokenError, type TokenErrorReason } from "@/lib/identity/errors";
import { VerificationKeySet, type KeyResolver, type VerificationKeyRecord } from "@/lib/identity/key-ring";
import { generateSigningKey, importPrivateSigningKey, type GeneratedSigningKey } from "@/lib/identity/keys";
import { RevocationSet } from "@/lib/identity/revocation";
import { mintTaskToken, TASK_TOKEN_TYP, type VerifyTaskTokenOptions } from "@/lib/identity/token";

export const ISSUER = "https://bulkhead.test";
export const AUDIENCE = "bulkhead-proxy";
export const NOW = new Date("2026-03-01T12:00:00.000Z");
export const NOW_S = Math.floor(NOW.getTime() / 1000);
export const AGENT = "agent_01";
export const TASK = "task_01";
/** The scope every fixture token carries. */
export const SCOPE = "railway:staging:read";

export function b64url(value: string | Uint8Array): string {
  return Buffer.from(value).toString("base64url");
}

export function json64(value: unknown): string {
  return b64url(JSON.stringify(value));
}

export function decodeSegment(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, "base64url").toString("utf8")) as Record<string, unknown>;
}

export function lifecycle(kid: string, createdAt: Date): Omit<VerificationKeyRecord, "publicJwk"> {
  return { kid, createdAt, retiringAt: null, verifyUntil: null, retiredAt: null };
}

export interface Fixture {
  signing: GeneratedSigningKey;
  privateKey: CryptoKey;
  keySet: VerificationKeySet;
  revocation: RevocationSet;
  options: (overrides?: Partial<VerifyTaskTokenOptions>) => VerifyTaskTokenOptions;
  /** A correctly minted token for AGENT/TASK at NOW (ttl 300 s, task ends in 1 h). */
  mint: (overrides?: { now?: Date; ttlSeconds?: number; taskEndsAt?: Date; agentId?: string; taskId?: string; scope?: string }) => Promise<string>;
  /** Signs arbitrary header/claims with the REAL private key (simulates a buggy or hostile issuer path). */
  signRaw: (header: Record<string, unknown>, claims: Record<string, unknown>) => Promise<string>;
  /** The claims a correct token would carry. */
  claims: (overrides?: Record<string, unknown>) => Record<string, unknown>;
  header: (overrides?: Record<string, unknown>) => Record<string, unknown>;
}

export async function makeFixture(): Promise<Fixture> {
  const signing = await generateSigningKey(new Date(NOW.getTime() - 86_400_000));
  const privateKey = await importPrivateSigningKey(signing.privateJwk);
  const keySet = await VerificationKeySet.fromRecords([
    { ...lifecycle(signing.kid, signing.createdAt), publicJwk: signing.publicJwk },
  ]);
  const revocation = new RevocationSet();
  const options = (overrides: Partial<VerifyTaskTokenOptions> = {}): VerifyTaskTokenOptions => ({
    issuer: ISSUER,
    audience: AUDIENCE,
    now: NOW,
    keys: keySet.resolver,
    revocation,
    ...overrides,
  });
  const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: AGENT,
    task: TASK,
    scope: SCOPE,
    jti: "AAAAAAAAAAAAAAAAAAAAAA",
    iat: NOW_S,
    nbf: NOW_S,
    exp: NOW_S + 300,
    ...overrides,
  });
  const header = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    alg: "EdDSA",
    typ: TASK_TOKEN_TYP,
    kid: signing.kid,
    ...overrides,
  });
  return {
    signing,
    privateKey,
    keySet,
    revocation,
    options,
    claims,
    header,
    mint: async (o = {}) =>
      (
        await mintTaskToken({
          key: { kid: signing.kid, privateKey },
          issuer: ISSUER,
          audience: AUDIENCE,
          agentId: o.agentId ?? AGENT,
          taskId: o.taskId ?? TASK,
          scope: o.scope ?? SCOPE,
          ttlSeconds: o.ttlSeconds ?? 300,
          taskEndsAt: o.taskEndsAt ?? new Date(NOW.getTime() + 3_600_000),
          now: o.now ?? NOW,
        })
      ).token,
    signRaw: (h, c) => signWith(privateKey, h, c),
  };
}

/**
 * Signs with the header exactly as given. Ed25519 is signed by hand (an attacker is not bound by
 * jose's own header checks, e.g. unknown `crit` entries); other algorithms go through jose.
 */
export async function signWith(
  key: CryptoKey | KeyObject,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): Promise<string> {
  if (!(key instanceof KeyObject) && key.algorithm.name === "Ed25519") {
    const input = `${json64(header)}.${json64(claims)}`;
    const sig = await crypto.subtle.sign("Ed25519", key, new TextEncoder().encode(input));
    return `${input}.${b64url(new Uint8Array(sig))}`;
  }
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader(header as { alg: string })
    .sign(key);
}

/** A hand-made HS256 token: the classic "verify with the public key as HMAC secret" confusion. */
export function hs256(header: Record<string, unknown>, claims: Record<string, unknown>, secret: string | Buffer): string {
  const input = `${json64(header)}.${json64(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

/** Fixed resolver for tests that need a particular status. */
export function fixedResolver(kid: string, key: CryptoKey, status: "active" | "retiring" | "retired"): KeyResolver {
  return (k) => (k === kid ? { key, status } : undefined);
}

/** Asserts a TokenError with `reason` (and `field`), whose message does not echo the token. */
export async function expectReason(
  promise: Promise<unknown>,
  reason: TokenErrorReason,
  token?: string,
  field?: string,
): Promise<TokenError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected TokenError(${reason})`).toBeInstanceOf(TokenError);
  const tokenError = error as TokenError;
  expect(tokenError.reason).toBe(reason);
  if (field !== undefined) expect(tokenError.field).toBe(field);
  if (token !== undefined) {
    for (const part of token.split(".")) {
      if (part.length >= 8) expect(tokenError.message).not.toContain(part);
    }
  }
  return tokenError;
}
