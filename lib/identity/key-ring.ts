/**
 * Signing keys in storage and in memory.
 *
 * Storage is injected (`SigningKeyStore`); this module only decides. Verifiers hold a
 * `VerificationKeySet` (public keys imported once) and hand its resolver to `verifyTaskToken`;
 * the signer loads the newest active key with `loadSigningKey`.
 */
import type { KeyObject } from "node:crypto";
import type { JWK } from "jose";
import {
  beginRetirement,
  generateSigningKey,
  importPrivateSigningKey,
  importPublicSigningKey,
  isValidKid,
  keyStatusAt,
  openPrivateJwk,
  pickSigningKey,
  sealPrivateJwk,
  SIGNING_ALG,
  toJwks,
  type KeyStatus,
  type PublicSigningJwk,
  type SigningKeyLifecycle,
} from "@/lib/identity/keys";

/** A signing key as stored: the private half only ever sealed under the dashboard key. */
export interface StoredSigningKey extends SigningKeyLifecycle {
  alg: typeof SIGNING_ALG;
  publicJwk: PublicSigningJwk;
  privateKeySealed: string;
}

/** A key as the verifier sees it (no private half). */
export type VerificationKeyRecord = SigningKeyLifecycle & { publicJwk: JWK };

export interface RotationChange {
  added: StoredSigningKey;
  retiring: { kid: string; retiringAt: Date; verifyUntil: Date }[];
}

/** Implemented against Postgres by the app. `commitRotation` must be one transaction. */
export interface SigningKeyStore {
  listKeys(): Promise<StoredSigningKey[]>;
  /** Latest `exp` of tokens minted with `kid`, or null if none were recorded. */
  latestTokenExpiry(kid: string): Promise<Date | null>;
  commitRotation(change: RotationChange): Promise<void>;
}

/** A fresh key ready to store. */
export async function createStoredSigningKey(dashboardKey: Buffer, now: Date): Promise<StoredSigningKey> {
  const generated = await generateSigningKey(now);
  return {
    kid: generated.kid,
    alg: SIGNING_ALG,
    publicJwk: generated.publicJwk,
    privateKeySealed: sealPrivateJwk(generated.kid, generated.privateJwk, dashboardKey),
    createdAt: generated.createdAt,
    retiringAt: null,
    verifyUntil: null,
    retiredAt: null,
  };
}

/**
 * Pure: what a rotation at `now` changes, given the current keys. The new key signs from `now`;
 * every currently active key moves to `retiring` and keeps verifying its outstanding tokens.
 */
export function planRotation(
  keys: readonly SigningKeyLifecycle[],
  added: StoredSigningKey,
  now: Date,
  options: { maxTokenTtlSeconds: number; latestTokenExpiry: ReadonlyMap<string, Date | null> },
): RotationChange {
  const retiring: RotationChange["retiring"] = [];
  for (const key of keys) {
    if (keyStatusAt(key, now) !== "active") continue;
    const next = beginRetirement(key, now, {
      maxTokenTtlSeconds: options.maxTokenTtlSeconds,
      latestTokenExpiry: options.latestTokenExpiry.get(key.kid) ?? null,
    });
    if (next.retiringAt && next.verifyUntil) {
      retiring.push({ kid: key.kid, retiringAt: next.retiringAt, verifyUntil: next.verifyUntil });
    }
  }
  return { added, retiring };
}

/** Generates a new key and retires the active ones through the store. */
export async function rotateSigningKey(
  store: SigningKeyStore,
  dashboardKey: Buffer,
  now: Date,
  options: { maxTokenTtlSeconds: number },
): Promise<RotationChange> {
  const keys = await store.listKeys();
  const latest = new Map<string, Date | null>();
  for (const key of keys) {
    if (keyStatusAt(key, now) === "active") latest.set(key.kid, await store.latestTokenExpiry(key.kid));
  }
  const added = await createStoredSigningKey(dashboardKey, now);
  const change = planRotation(keys, added, now, { ...options, latestTokenExpiry: latest });
  await store.commitRotation(change);
  return change;
}

export interface LoadedSigningKey {
  kid: string;
  privateKey: CryptoKey;
}

/** The signer's key at `now` (newest active), opened with the dashboard key. */
export async function loadSigningKey(
  keys: readonly StoredSigningKey[],
  dashboardKey: Buffer,
  now: Date,
): Promise<LoadedSigningKey | undefined> {
  const key = pickSigningKey(keys, now);
  if (!key) return undefined;
  const jwk = openPrivateJwk(key.kid, key.privateKeySealed, dashboardKey);
  return { kid: key.kid, privateKey: await importPrivateSigningKey(jwk) };
}

export interface ResolvedKey {
  /** Must be an Ed25519 public key; anything else fails closed. */
  key: CryptoKey | KeyObject;
  status: KeyStatus;
}

/**
 * Resolves a (shape-checked) kid to a verification key from memory; never fetches anything.
 * Resolvers may ignore `now` (a fixed map fits the type); the status must reflect `now`.
 */
export type KeyResolver = (kid: string, now: Date) => ResolvedKey | undefined;

interface Entry {
  record: VerificationKeyRecord;
  key: CryptoKey;
}

/** The verifier's in-memory key set; `replace` swaps it atomically after a reload. */
export class VerificationKeySet {
  private entries = new Map<string, Entry>();

  static async fromRecords(records: Iterable<VerificationKeyRecord>): Promise<VerificationKeySet> {
    const set = new VerificationKeySet();
    await set.replace(records);
    return set;
  }

  /**
   * Imports every key first, then swaps, so a bad record never leaves a half-loaded set. A record
   * that is not a usable public key (an invalid kid, a JWK that will not import: a hand-edited or
   * faulty row) is left out and returned: a token naming its kid finds no key and is refused, and
   * every other key still verifies. Failing the whole set for it stopped every token of every
   * other key (and, in the worker, every full reload) for as long as the row stayed.
   */
  async replace(records: Iterable<VerificationKeyRecord>): Promise<{ unusable: Array<{ kid: string; reason: string }> }> {
    const next = new Map<string, Entry>();
    const unusable: Array<{ kid: string; reason: string }> = [];
    for (const record of records) {
      const kid = String(record.kid).slice(0, 64);
      if (!isValidKid(record.kid)) {
        unusable.push({ kid, reason: "invalid kid" });
        continue;
      }
      try {
        next.set(record.kid, { record, key: await importPublicSigningKey(record.publicJwk) });
      } catch (error) {
        unusable.push({ kid, reason: error instanceof Error ? error.message.slice(0, 200) : "the public key does not import" });
      }
    }
    this.entries = next;
    return { unusable };
  }

  resolve(kid: string, now: Date): ResolvedKey | undefined {
    const entry = this.entries.get(kid);
    if (!entry) return undefined;
    return { key: entry.key, status: keyStatusAt(entry.record, now) };
  }

  /** Bound resolver to pass as `keys` to `verifyTaskToken` / the token cache. */
  readonly resolver: KeyResolver = (kid, now) => this.resolve(kid, now);

  /** Public JWKS of every key that still verifies at `now`. */
  jwks(now: Date): { keys: PublicSigningJwk[] } {
    const live = [...this.entries.values()].filter((e) => keyStatusAt(e.record, now) !== "retired");
    return toJwks(live.map((e) => ({ kid: e.record.kid, publicJwk: e.record.publicJwk })));
  }

  get size(): number {
    return this.entries.size;
  }
}
