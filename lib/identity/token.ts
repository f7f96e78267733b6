/**
 * Task tokens: short-lived EdDSA JWTs naming one agent and one task.
 *
 * `verifyTaskToken` is THE verification function; every verifier goes through it (directly or via
 * the token cache). Cheap structural checks run first and fail with a distinct reason; keys are
 * looked up only by a shape-checked `kid` in an in-memory set, never from token headers.
 */
import { randomBytes, KeyObject } from "node:crypto";
import { compactVerify, decodeProtectedHeader, errors, SignJWT, type ProtectedHeaderParameters } from "jose";
import { TokenError, TokenMintError, type RequiredClaim } from "@/lib/identity/errors";
import type { KeyResolver } from "@/lib/identity/key-ring";
import { isValidKid, MAX_CLOCK_TOLERANCE_SECONDS, SIGNING_ALG } from "@/lib/identity/keys";
import type { RevocationView } from "@/lib/identity/revocation";
import { parseCanonicalScope, type TaskScope } from "@/lib/identity/scope";

export const TASK_TOKEN_TYP = "bulkhead-task+jwt";
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = MAX_CLOCK_TOLERANCE_SECONDS;
/** Our tokens are ~400 chars; anything far larger is rejected before decoding. */
export const MAX_TOKEN_LENGTH = 4096;
/**
 * No task token lives longer than this (exp - iat), at minting and at verification alike: a
 * correctly signed token with a longer life was not made by Bulkhead (a leaked signing key).
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 3600;

/** Agent and task ids as the database issues them (cuid/uuid-like); bounded and inert. */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const JTI_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;
// The signature may be empty here so that `alg: none` is reported as such, not as malformed.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** An Ed25519 signature is 64 bytes: 86 base64url chars, the last carrying 2 bits (so A, Q, g or w). */
const CANONICAL_ED25519_SIG = /^[A-Za-z0-9_-]{85}[AQgw]$/;
const ALLOWED_HEADER = new Set(["alg", "typ", "kid"]);
/** Headers that would let the token choose its own key or extend the spec: named in errors. */
const FORBIDDEN_HEADER = new Set(["jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit", "b64"]);
const REQUIRED_CLAIMS: readonly RequiredClaim[] = ["iss", "aud", "sub", "task", "scope", "jti", "iat", "nbf", "exp"];

export interface TaskTokenConfig {
  issuer: string;
  audience: string;
}

export interface TaskTokenClaims {
  iss: string;
  aud: string;
  /** Agent id. */
  sub: string;
  /** Task id. */
  task: string;
  /** The task's scope in canonical text (lib/identity/scope.ts); "" allows nothing. */
  scope: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
}

export interface MintTaskTokenInput extends TaskTokenConfig {
  key: { kid: string; privateKey: CryptoKey | KeyObject };
  agentId: string;
  taskId: string;
  /** The task's scope, canonical text (as stored with the task). */
  scope: string;
  ttlSeconds: number;
  taskEndsAt: Date;
  now: Date;
  jti?: string;
}

export interface MintedTaskToken {
  token: string;
  jti: string;
  issuedAt: Date;
  expiresAt: Date;
}

export interface VerifyTaskTokenOptions extends TaskTokenConfig {
  now: Date;
  /** Default 5; larger values are refused (RangeError). */
  clockToleranceSeconds?: number;
  keys: KeyResolver;
  revocation: RevocationView;
}

export interface VerifiedTaskToken {
  agentId: string;
  taskId: string;
  jti: string;
  kid: string;
  /** The scope claim, parsed once: what this token may touch, whatever its task's policy says. */
  scope: TaskScope;
  issuedAt: Date;
  expiresAt: Date;
  claims: Readonly<TaskTokenClaims> & { readonly [name: string]: unknown };
}

function randomJti(): string {
  return randomBytes(16).toString("base64url"); // 128 bits
}

function validTime(now: Date, name: string): number {
  const t = now instanceof Date ? now.getTime() : Number.NaN;
  if (!Number.isFinite(t)) throw new TypeError(`${name} must be a valid Date`);
  return t;
}

export async function mintTaskToken(input: MintTaskTokenInput): Promise<MintedTaskToken> {
  const nowMs = validTime(input.now, "now");
  const endMs = validTime(input.taskEndsAt, "taskEndsAt");
  if (!isValidKid(input.key.kid)) throw new TokenMintError("invalid_input", "signing key has an invalid kid");
  if (!input.issuer || !input.audience) throw new TokenMintError("invalid_input", "issuer and audience are required");
  if (!ID_PATTERN.test(input.agentId)) throw new TokenMintError("invalid_input", "agent id has an invalid shape");
  if (!ID_PATTERN.test(input.taskId)) throw new TokenMintError("invalid_input", "task id has an invalid shape");
  if (!parseCanonicalScope(input.scope)) throw new TokenMintError("invalid_input", "scope is not a canonical task scope");
  if (!Number.isFinite(input.ttlSeconds) || input.ttlSeconds < 1 || input.ttlSeconds > MAX_TOKEN_LIFETIME_SECONDS) {
    throw new TokenMintError("invalid_ttl", `ttlSeconds must be between 1 and ${MAX_TOKEN_LIFETIME_SECONDS}`);
  }
  const jti = input.jti ?? randomJti();
  if (!JTI_PATTERN.test(jti)) throw new TokenMintError("invalid_input", "jti has an invalid shape");
  if (endMs <= nowMs) throw new TokenMintError("task_ended", "task has already ended");

  const iat = Math.floor(nowMs / 1000);
  // Never past the task's end: floor, so exp <= taskEndsAt exactly.
  const exp = Math.min(iat + Math.floor(input.ttlSeconds), Math.floor(endMs / 1000));
  if (exp <= iat) throw new TokenMintError("task_ended", "task ends within the next second");

  const claims: TaskTokenClaims = {
    iss: input.issuer,
    aud: input.audience,
    sub: input.agentId,
    task: input.taskId,
    scope: input.scope,
    jti,
    iat,
    nbf: iat,
    exp,
  };
  const token = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: SIGNING_ALG, typ: TASK_TOKEN_TYP, kid: input.key.kid })
    .sign(input.key.privateKey);
  return { token, jti, issuedAt: new Date(iat * 1000), expiresAt: new Date(exp * 1000) };
}

/** Validates and returns the clock tolerance; more than 5 s is a configuration error. */
export function resolveClockTolerance(value: number | undefined): number {
  const tol = value ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (!Number.isFinite(tol) || tol < 0 || tol > MAX_CLOCK_TOLERANCE_SECONDS) {
    throw new RangeError(`clockToleranceSeconds must be between 0 and ${MAX_CLOCK_TOLERANCE_SECONDS}`);
  }
  return tol;
}

/** Structure and header checks; no key material involved. Returns the shape-checked kid. */
function checkHeader(token: unknown): string {
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) {
    throw new TokenError("malformed");
  }
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token); // decoding only: never used to find a key
  } catch {
    throw new TokenError("malformed");
  }
  if (header.alg !== SIGNING_ALG) throw new TokenError("alg_not_allowed");
  for (const name of Object.keys(header)) {
    if (FORBIDDEN_HEADER.has(name)) throw new TokenError("header_key_forbidden", name);
    if (!ALLOWED_HEADER.has(name)) throw new TokenError("header_key_forbidden", "unexpected");
  }
  if (header.typ !== TASK_TOKEN_TYP) throw new TokenError("typ_mismatch");
  if (header.kid === undefined) throw new TokenError("kid_missing");
  if (!isValidKid(header.kid)) throw new TokenError("kid_invalid");
  return header.kid;
}

function isEd25519PublicKey(key: CryptoKey | KeyObject): boolean {
  if (key instanceof KeyObject) return key.type === "public" && key.asymmetricKeyType === "ed25519";
  return key.type === "public" && key.algorithm.name === "Ed25519";
}

function parsePayload(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new TokenError("malformed");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new TokenError("malformed");
  return value as Record<string, unknown>;
}

function isTimestamp(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Claim presence, shape, issuer, audience and time. Pure. */
function checkClaims(
  payload: Record<string, unknown>,
  options: TaskTokenConfig,
  nowMs: number,
  tol: number,
): { claims: TaskTokenClaims; scope: TaskScope } {
  for (const name of REQUIRED_CLAIMS) {
    if (payload[name] === undefined || payload[name] === null) throw new TokenError("claim_missing", name);
  }
  const { iss, aud, sub, task, scope, jti, iat, nbf, exp } = payload;
  if (typeof sub !== "string" || !ID_PATTERN.test(sub)) throw new TokenError("claim_invalid", "sub");
  if (typeof task !== "string" || !ID_PATTERN.test(task)) throw new TokenError("claim_invalid", "task");
  // Only the canonical spelling: a claim has one meaning, and it is the one the issuer wrote.
  const parsedScope = parseCanonicalScope(scope);
  if (typeof scope !== "string" || !parsedScope) throw new TokenError("claim_invalid", "scope");
  if (typeof jti !== "string" || !JTI_PATTERN.test(jti)) throw new TokenError("claim_invalid", "jti");
  if (!isTimestamp(iat)) throw new TokenError("claim_invalid", "iat");
  if (!isTimestamp(nbf)) throw new TokenError("claim_invalid", "nbf");
  if (!isTimestamp(exp) || exp <= iat) throw new TokenError("claim_invalid", "exp");
  // With exp checked below, this also bounds the token's age: now < exp <= iat + the maximum.
  if (exp - iat > MAX_TOKEN_LIFETIME_SECONDS) throw new TokenError("lifetime_exceeded");
  if (typeof iss !== "string" || iss !== options.issuer) throw new TokenError("iss_mismatch");
  // Exactly one audience, as a string: an array (even one containing ours) is refused.
  if (typeof aud !== "string" || aud !== options.audience) throw new TokenError("aud_mismatch");

  const tolMs = tol * 1000;
  if (nowMs >= exp * 1000 + tolMs) throw new TokenError("expired");
  if (nbf * 1000 > nowMs + tolMs) throw new TokenError("not_yet_valid", "nbf");
  if (iat * 1000 > nowMs + tolMs) throw new TokenError("not_yet_valid", "iat");
  return { claims: { iss, aud, sub, task, scope, jti, iat, nbf, exp }, scope: parsedScope };
}

/** Revocation checks, shared with the cache's hit path. */
export function assertNotRevoked(
  token: { taskId: string; agentId: string; jti: string },
  revocation: RevocationView,
): void {
  if (revocation.isTaskRevoked(token.taskId)) throw new TokenError("task_revoked");
  if (revocation.isAgentSuspended(token.agentId)) throw new TokenError("agent_suspended");
  if (revocation.isJtiRevoked(token.jti)) throw new TokenError("jti_revoked");
}

export async function verifyTaskToken(token: string, options: VerifyTaskTokenOptions): Promise<VerifiedTaskToken> {
  const tol = resolveClockTolerance(options.clockToleranceSeconds);
  const nowMs = validTime(options.now, "now");
  const kid = checkHeader(token);
  const resolved = options.keys(kid, options.now);
  if (!resolved) throw new TokenError("kid_unknown");
  if (resolved.status === "retired") throw new TokenError("key_retired");
  // A misconfigured key set must fail closed, not widen what we accept.
  if (!isEd25519PublicKey(resolved.key)) throw new Error("key resolver returned a key that is not Ed25519 public");

  // Decoders ignore the spare bits of the last character; without this one signature would have
  // several spellings, i.e. several distinct token strings for one token.
  if (!CANONICAL_ED25519_SIG.test(token.slice(token.lastIndexOf(".") + 1))) {
    throw new TokenError("signature_invalid");
  }
  let payloadBytes: Uint8Array;
  try {
    ({ payload: payloadBytes } = await compactVerify(token, resolved.key, { algorithms: [SIGNING_ALG] }));
  } catch (error) {
    if (error instanceof errors.JWSSignatureVerificationFailed) throw new TokenError("signature_invalid");
    if (error instanceof errors.JOSEAlgNotAllowed) throw new TokenError("alg_not_allowed");
    if (error instanceof errors.JOSEError) throw new TokenError("malformed");
    throw error;
  }

  const payload = parsePayload(payloadBytes);
  const { claims, scope } = checkClaims(payload, options, nowMs, tol);
  const result: VerifiedTaskToken = {
    agentId: claims.sub,
    taskId: claims.task,
    jti: claims.jti,
    kid,
    scope,
    issuedAt: new Date(claims.iat * 1000),
    expiresAt: new Date(claims.exp * 1000),
    claims: Object.freeze({ ...payload, ...claims }),
  };
  assertNotRevoked(result, options.revocation);
  return Object.freeze(result);
}
