/**
 * Task-token signing keys: Ed25519 only (EdDSA), pinned everywhere.
 *
 * Lifecycle: `active` (signs and verifies) → `retiring` (verifies only, until `verifyUntil`, the
 * latest expiry of any token it signed) → `retired` (rejected). A key can also be retired at once
 * (`retiredAt`, e.g. suspected compromise).
 */
import { randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { openSecretText, sealSecret } from "@/lib/crypto/envelope";

export const SIGNING_ALG = "EdDSA" as const;
export const SIGNING_CRV = "Ed25519" as const;
/** "bk_" + 16 base64url chars (96 random bits). Checked before any lookup. */
export const KID_PATTERN = /^bk_[A-Za-z0-9_-]{16}$/;
/** The largest clock skew any verifier accepts; retiring keys get the same grace. */
export const MAX_CLOCK_TOLERANCE_SECONDS = 5;

const ED25519_X = /^[A-Za-z0-9_-]{43}$/;

export type KeyStatus = "active" | "retiring" | "retired";

/** Public JWK as published: public members only. */
export interface PublicSigningJwk {
  kty: "OKP";
  crv: typeof SIGNING_CRV;
  x: string;
  kid: string;
  alg: typeof SIGNING_ALG;
  use: "sig";
}

/** Private JWK: only ever held in memory or sealed with the dashboard key. */
export interface PrivateSigningJwk {
  kty: "OKP";
  crv: typeof SIGNING_CRV;
  x: string;
  d: string;
}

export interface GeneratedSigningKey {
  kid: string;
  alg: typeof SIGNING_ALG;
  publicJwk: PublicSigningJwk;
  privateJwk: PrivateSigningJwk;
  createdAt: Date;
}

/** What key lifecycle decisions need; storage rows carry at least this. */
export interface SigningKeyLifecycle {
  kid: string;
  createdAt: Date;
  /** When it stopped signing; null while active. */
  retiringAt: Date | null;
  /** Latest expiry of any token it signed; meaningful once retiring. */
  verifyUntil: Date | null;
  /** Forced retirement (e.g. compromise); null unless set. */
  retiredAt: Date | null;
}

export function isValidKid(kid: unknown): kid is string {
  return typeof kid === "string" && KID_PATTERN.test(kid);
}

export function newKid(): string {
  return `bk_${randomBytes(12).toString("base64url")}`;
}

export async function generateSigningKey(now: Date): Promise<GeneratedSigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { crv: SIGNING_CRV, extractable: true });
  const kid = newKid();
  const pub = await exportJWK(publicKey);
  const priv = await exportJWK(privateKey);
  if (typeof priv.d !== "string") throw new Error("Ed25519 private key export lacks d");
  return {
    kid,
    alg: SIGNING_ALG,
    publicJwk: toPublicJwk(kid, pub),
    privateJwk: { kty: "OKP", crv: SIGNING_CRV, x: requireX(priv), d: priv.d },
    createdAt: new Date(now.getTime()),
  };
}

function requireX(jwk: JWK): string {
  if (jwk.kty !== "OKP" || jwk.crv !== SIGNING_CRV || typeof jwk.x !== "string" || !ED25519_X.test(jwk.x)) {
    throw new TypeError("not an Ed25519 OKP JWK");
  }
  return jwk.x;
}

/**
 * Builds the publishable JWK member by member: never spreads its input, so a private member
 * (`d`) can never slip through even if a private JWK is passed in.
 */
export function toPublicJwk(kid: string, jwk: JWK): PublicSigningJwk {
  if (!isValidKid(kid)) throw new TypeError("invalid kid");
  return { kty: "OKP", crv: SIGNING_CRV, x: requireX(jwk), kid, alg: SIGNING_ALG, use: "sig" };
}

/** Public JWKS of the given keys (the caller decides which keys to publish, e.g. not retired). */
export function toJwks(keys: Iterable<{ kid: string; publicJwk: JWK }>): { keys: PublicSigningJwk[] } {
  return { keys: Array.from(keys, (k) => toPublicJwk(k.kid, k.publicJwk)) };
}

/** Imports a public key for verification; algorithm pinned, private members refused. */
export async function importPublicSigningKey(jwk: JWK): Promise<CryptoKey> {
  if ("d" in jwk) throw new TypeError("expected a public JWK, got private material");
  const key = await importJWK({ kty: "OKP", crv: SIGNING_CRV, x: requireX(jwk) }, SIGNING_ALG);
  return assertEd25519(key, "public");
}

/** Imports a private key for signing; algorithm pinned. */
export async function importPrivateSigningKey(jwk: JWK): Promise<CryptoKey> {
  if (typeof jwk.d !== "string") throw new TypeError("expected a private Ed25519 JWK");
  const key = await importJWK({ kty: "OKP", crv: SIGNING_CRV, x: requireX(jwk), d: jwk.d }, SIGNING_ALG);
  return assertEd25519(key, "private");
}

function assertEd25519(key: CryptoKey | Uint8Array, type: KeyType): CryptoKey {
  if (key instanceof Uint8Array || key.algorithm.name !== "Ed25519" || key.type !== type) {
    throw new TypeError("imported key is not an Ed25519 key");
  }
  return key;
}

/** Envelope aad for a signing key's private JWK: the sealed blob only opens for this kid. */
export function signingKeyAad(kid: string): string {
  return `bulkhead:signing-key:${kid}`;
}

/** Seals a private JWK under the dashboard key (lib/keys/process-keys.ts): only token minters open it. */
export function sealPrivateJwk(kid: string, jwk: PrivateSigningJwk, dashboardKey: Buffer): string {
  return sealSecret(JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d }), dashboardKey, signingKeyAad(kid));
}

export function openPrivateJwk(kid: string, sealed: string, dashboardKey: Buffer): PrivateSigningJwk {
  const parsed: unknown = JSON.parse(openSecretText(sealed, dashboardKey, signingKeyAad(kid)));
  if (typeof parsed !== "object" || parsed === null) throw new TypeError("sealed signing key is not a JWK");
  const jwk = parsed as JWK;
  if (typeof jwk.d !== "string") throw new TypeError("sealed signing key lacks private material");
  return { kty: "OKP", crv: SIGNING_CRV, x: requireX(jwk), d: jwk.d };
}

/** Pure lifecycle decision for `key` at `now`. */
export function keyStatusAt(key: SigningKeyLifecycle, now: Date): KeyStatus {
  const t = now.getTime();
  if (key.retiredAt !== null && t >= key.retiredAt.getTime()) return "retired";
  if (key.retiringAt === null || t < key.retiringAt.getTime()) return "active";
  // Retiring keys keep verifying while a token they signed could still be accepted, i.e. up to
  // its expiry plus the clock tolerance verifiers grant.
  const until = key.verifyUntil?.getTime() ?? key.retiringAt.getTime();
  return t < until + MAX_CLOCK_TOLERANCE_SECONDS * 1000 ? "retiring" : "retired";
}

/**
 * The lifecycle fields of a key that stops signing at `now`. `latestTokenExpiry` is the latest
 * `exp` of the tokens it signed (from storage); `maxTokenTtlSeconds` bounds tokens minted
 * concurrently with the rotation that storage has not seen yet.
 */
export function beginRetirement(
  key: SigningKeyLifecycle,
  now: Date,
  options: { latestTokenExpiry: Date | null; maxTokenTtlSeconds: number },
): SigningKeyLifecycle {
  if (!(options.maxTokenTtlSeconds >= 0) || !Number.isFinite(options.maxTokenTtlSeconds)) {
    throw new RangeError("maxTokenTtlSeconds must be a finite non-negative number");
  }
  if (keyStatusAt(key, now) !== "active") return key;
  const bound = now.getTime() + options.maxTokenTtlSeconds * 1000;
  const latest = options.latestTokenExpiry?.getTime() ?? 0;
  return { ...key, retiringAt: new Date(now.getTime()), verifyUntil: new Date(Math.max(bound, latest)) };
}

/** The key that signs at `now`: the newest active one (ties cannot happen with random kids). */
export function pickSigningKey<K extends SigningKeyLifecycle>(keys: Iterable<K>, now: Date): K | undefined {
  let best: K | undefined;
  for (const k of keys) {
    if (keyStatusAt(k, now) !== "active") continue;
    if (best === undefined || k.createdAt.getTime() > best.createdAt.getTime()) best = k;
  }
  return best;
}
