import { createPrismaClient, type Db } from "@/lib/db/client";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey, openSecret, parseMasterKey, sealedKeyFingerprint, sealSecret, keyFingerprint } from "@/lib/crypto/envelope";
import { isSealedBox, sealedBoxRecipient } from "@/lib/crypto/sealed-box";
import { loadActiveSigningKey } from "@/lib/identity/key-store";
import { generateSigningKey, sealPrivateJwk } from "@/lib/identity/keys";
import { assertMasterKeyMatchesData } from "@/lib/identity/master-key";
import { issueTaskToken, verifyTaskTokenNow } from "@/lib/identity/task-tokens";
import { establishProcessKeys } from "@/lib/keys/establish";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { resealAll } from "@/lib/keys/reseal";
import { createTask } from "@/lib/tasks/tasks";
import { generateCertificateAuthority } from "@/lib/tls/ca";
import { caKeyAad } from "@/lib/tls/ca-public";
import { loadCertificateAuthority } from "@/lib/tls/ca-store";
import { loadCredentialsForInjection } from "@/lib/vault";
import { credentialAad } from "@/lib/vault/view";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

const identity = { issuer: "bulkhead", audience: "bulkhead-proxy" };

/**
 * A database written before per-process keys: every secret sealed under the master key itself
 * (the v1 envelope), exactly as the previous version stored them. Starting this version converts
 * them, row by row, so an interrupted conversion continues at the next start.
 */
describe("data sealed under the master key before per-process keys", () => {
  let t: TestDatabase;
  // Converting sealed columns is the launcher's job, as the owner role (no runtime role may).
  let ownerDb: Db;
  const master = parseMasterKey(generateMasterKey());
  const keys = deriveProcessKeys(master);
  const secrets = new Map<string, string>();
  let token: string;
  let kid: string;
  let caId: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    ownerDb = createPrismaClient(t.ownerUrl, 2);
    const owner = await makeUser(t.db, "admin");
    await assertMasterKeyMatchesData(t.db, master);
    // A signing key, credentials and a CA sealed the old way.
    const signing = await generateSigningKey(new Date());
    kid = signing.kid;
    await t.db.signingKey.create({
      data: { kid, alg: signing.alg, publicJwk: signing.publicJwk as never, privateKeySealed: sealPrivateJwk(kid, signing.privateJwk, master), createdAt: signing.createdAt, status: "active" },
    });
    for (let i = 0; i < 5; i++) {
      const id = randomUUID();
      const secret = `sk_live_${unique("legacy")}`;
      secrets.set(id, secret);
      await t.db.credential.create({
        data: { id, name: unique("legacy"), scheme: "https", host: `legacy-${i}.example.test`, port: 443, headerTemplate: "Authorization: Bearer {secret}", secretSealed: sealSecret(secret, master, credentialAad(id)) },
      });
    }
    const ca = await generateCertificateAuthority({ now: new Date() });
    caId = randomUUID();
    await t.adminDb().certificateAuthority.create({ data: { id: caId, certPem: ca.certPem, privateKeySealed: sealSecret(ca.privateKeyPkcs8Pem, master, caKeyAad(caId)), notAfter: ca.notAfter } });
    const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: owner.user.id } });
    const task = await createTask(t.db, owner.actor, { agentId: agent.id, purpose: "legacy", policyYaml: "unlisted: deny\nrules: []\n", ttl: "30m" });
    // A token the old version minted: it must still verify after the conversion.
    const { mintTaskToken } = await import("@/lib/identity/token");
    const { importPrivateSigningKey } = await import("@/lib/identity/keys");
    const minted = await mintTaskToken({ ...identity, key: { kid, privateKey: await importPrivateSigningKey(signing.privateJwk) }, agentId: agent.id, taskId: task.id, scope: task.scope, ttlSeconds: 600, taskEndsAt: task.expiresAt, now: new Date() });
    token = minted.token;
    // The old version recorded what it issued too (a token Bulkhead has no record of is refused).
    await t.db.issuedToken.create({ data: { jti: minted.jti, taskId: task.id, agentId: agent.id, kid, issuedAt: minted.issuedAt, expiresAt: minted.expiresAt } });
  });
  afterAll(async () => {
    await ownerDb.$disconnect();
    await t.drop();
  });

  it("a worker cannot use legacy values and says how to fix it", async () => {
    await expect(loadCredentialsForInjection(t.db, keys.workerKey)).rejects.toThrow(/legacy master-key format; `bulkhead start` converts it/);
  });

  it("an interrupted conversion leaves rows either converted or untouched, and the next start finishes it", async () => {
    let converted = 0;
    const interrupted = await resealAll(ownerDb, {
      to: keys,
      from: [],
      legacyMasters: [master],
      onResealed: () => {
        if (++converted === 3) throw new Error("killed");
      },
    }).catch((e: unknown) => e);
    expect(String(interrupted)).toMatch(/killed/);
    const halfway = await t.db.credential.findMany({ select: { secretSealed: true } });
    const done = halfway.filter((r) => isSealedBox(r.secretSealed)).length;
    // The signing key and two credentials were converted before the "kill"; the rest are untouched.
    expect(halfway).toHaveLength(5);
    expect(done).toBe(2);
    for (const r of halfway) if (!isSealedBox(r.secretSealed)) expect(sealedKeyFingerprint(r.secretSealed)).toBe(keyFingerprint(master));

    // What `bulkhead start` (and every CLI command holding the master key) runs.
    const result = await establishProcessKeys(ownerDb, master);
    expect(Object.values(result.converted).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    const again = await establishProcessKeys(ownerDb, master);
    expect(again.converted).toEqual({});
    expect(await t.db.auditEvent.count({ where: { type: "keys.converted" } })).toBe(1);
  });

  it("after conversion, nothing needs the master key: each value opens with its process's key only", async () => {
    const credentials = await t.db.credential.findMany();
    for (const row of credentials) {
      expect(sealedBoxRecipient(row.secretSealed)).toBe(keys.workerKey.fingerprint);
      expect(() => openSecret(row.secretSealed, master, credentialAad(row.id))).toThrow();
    }
    const injected = await loadCredentialsForInjection(t.db, keys.workerKey);
    for (const [id, secret] of secrets) {
      expect([...injected.values()].find((c) => c.credentialId === id)?.headerValue).toBe(`Bearer ${secret}`);
    }
    const ca = await loadCertificateAuthority(t.db, keys.workerKey);
    expect(ca.id).toBe(caId);
    const signing = await t.db.signingKey.findUniqueOrThrow({ where: { kid } });
    expect(sealedKeyFingerprint(signing.privateKeySealed)).toBe(keyFingerprint(keys.dashboardKey));
    expect((await loadActiveSigningKey(t.db, keys.dashboardKey))?.kid).toBe(kid);
  });

  it("tokens minted before the conversion still verify, and the converted key keeps minting", async () => {
    await expect(verifyTaskTokenNow(t.db, identity, token)).resolves.toMatchObject({ kid });
    const owner = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: owner.user.id } });
    const task = await createTask(t.db, owner.actor, { agentId: agent.id, purpose: "after", policyYaml: "unlisted: deny\nrules: []\n" });
    const issued = await issueTaskToken(t.db, owner.actor, keys.dashboardKey, identity, task.id);
    expect(issued.kid).toBe(kid);
  });

  it("refuses, changing nothing, a value sealed with a key it does not know", async () => {
    const id = randomUUID();
    const stranger = sealSecret("not ours", parseMasterKey(generateMasterKey()), credentialAad(id));
    await t.db.credential.create({ data: { id, name: unique("stranger"), scheme: "https", host: "stranger.example.test", port: 443, headerTemplate: "X-Key: {secret}", secretSealed: stranger } });
    try {
      await expect(establishProcessKeys(ownerDb, master)).rejects.toThrow(new RegExp(`credential ${id} .*sealed with a key that may not seal it`));
      expect((await t.db.credential.findUniqueOrThrow({ where: { id } })).secretSealed).toBe(stranger);
    } finally {
      await t.db.credential.delete({ where: { id } });
    }
  });
});
