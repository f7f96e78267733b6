/** Key rotation end to end against an in-memory store (the app implements it on Postgres). */
import { beforeEach, describe, expect, it } from "vitest";
import { generateMasterKey, parseMasterKey } from "@/lib/crypto/envelope";
import {
  createStoredSigningKey,
  loadSigningKey,
  rotateSigningKey,
  VerificationKeySet,
  type RotationChange,
  type SigningKeyStore,
  type StoredSigningKey,
} from "@/lib/identity/key-ring";
import { RevocationSet } from "@/lib/identity/revocation";
import { mintTaskToken, verifyTaskToken, type VerifyTaskTokenOptions } from "@/lib/identity/token";
import { AUDIENCE, expectReason, ISSUER, NOW } from "./helpers";

const at = (s: number) => new Date(NOW.getTime() + s * 1000);
const master = parseMasterKey(generateMasterKey());

class MemoryKeyStore implements SigningKeyStore {
  keys: StoredSigningKey[] = [];
  expiries = new Map<string, Date>();
  async listKeys() {
    return this.keys.map((k) => ({ ...k }));
  }
  async latestTokenExpiry(kid: string) {
    return this.expiries.get(kid) ?? null;
  }
  async commitRotation(change: RotationChange) {
    for (const r of change.retiring) {
      const k = this.keys.find((x) => x.kid === r.kid);
      if (k) Object.assign(k, { retiringAt: r.retiringAt, verifyUntil: r.verifyUntil });
    }
    this.keys.push(change.added);
  }
}

let store: MemoryKeyStore;
const revocation = new RevocationSet();

async function mintWithCurrentKey(now: Date, ttlSeconds: number) {
  const key = await loadSigningKey(store.keys, master, now);
  if (!key) throw new Error("no signing key");
  const minted = await mintTaskToken({
    key,
    issuer: ISSUER,
    audience: AUDIENCE,
    agentId: "agent_01",
    taskId: "task_01",
    scope: "",
    ttlSeconds,
    taskEndsAt: at(86_400),
    now,
  });
  // What the app's token table records; rotation reads it back as latestTokenExpiry.
  const prev = store.expiries.get(key.kid);
  if (!prev || prev < minted.expiresAt) store.expiries.set(key.kid, minted.expiresAt);
  return { ...minted, kid: key.kid };
}

async function options(now: Date): Promise<VerifyTaskTokenOptions> {
  const set = await VerificationKeySet.fromRecords(store.keys);
  return { issuer: ISSUER, audience: AUDIENCE, now, keys: set.resolver, revocation };
}

beforeEach(async () => {
  store = new MemoryKeyStore();
  store.keys.push(await createStoredSigningKey(master, at(-3600)));
});

describe("rotation", () => {
  it("a retiring key keeps verifying its tokens until they expire while the new key signs", async () => {
    const old = await mintWithCurrentKey(NOW, 600);
    const change = await rotateSigningKey(store, master, at(60), { maxTokenTtlSeconds: 300 });
    expect(change.retiring.map((r) => r.kid)).toEqual([old.kid]);
    // verifyUntil covers the longest outstanding token (600 s) rather than just the max ttl.
    expect(change.retiring[0]?.verifyUntil.getTime()).toBe(old.expiresAt.getTime());

    const fresh = await mintWithCurrentKey(at(61), 300);
    expect(fresh.kid).toBe(change.added.kid);
    expect(fresh.kid).not.toBe(old.kid);

    await expect(verifyTaskToken(old.token, await options(at(61)))).resolves.toMatchObject({ kid: old.kid });
    await expect(verifyTaskToken(old.token, await options(at(599)))).resolves.toMatchObject({ kid: old.kid });
    await expect(verifyTaskToken(fresh.token, await options(at(61)))).resolves.toMatchObject({ kid: fresh.kid });
  });

  it("after verifyUntil the old key is retired and its tokens are refused as such", async () => {
    const old = await mintWithCurrentKey(NOW, 120);
    await rotateSigningKey(store, master, at(10), { maxTokenTtlSeconds: 300 });
    // verifyUntil = max(latest exp 120 s, rotation + max ttl 310 s); +5 s tolerance grace.
    await expectReason(verifyTaskToken(old.token, await options(at(315))), "key_retired", old.token);
  });

  it("the new key is published alongside the retiring one, never the private half", async () => {
    await rotateSigningKey(store, master, NOW, { maxTokenTtlSeconds: 300 });
    const set = await VerificationKeySet.fromRecords(store.keys);
    const jwks = set.jwks(at(1));
    expect(jwks.keys).toHaveLength(2);
    expect(JSON.stringify(jwks)).not.toMatch(/"d"|privateKeySealed/);
  });

  it("a second rotation retires only the then-active key", async () => {
    await rotateSigningKey(store, master, NOW, { maxTokenTtlSeconds: 300 });
    const second = await rotateSigningKey(store, master, at(30), { maxTokenTtlSeconds: 300 });
    expect(second.retiring).toHaveLength(1);
    expect(second.retiring[0]?.kid).toBe(store.keys[1]?.kid);
    expect((await loadSigningKey(store.keys, master, at(31)))?.kid).toBe(second.added.kid);
  });
});
