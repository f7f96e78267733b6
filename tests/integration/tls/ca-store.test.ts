import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { generateMasterKey, KeyMismatchError, parseMasterKey, SecretIntegrityError } from "@/lib/crypto/envelope";
import { openBoxText, sealTo } from "@/lib/crypto/sealed-box";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { generateCertificateAuthority } from "@/lib/tls/ca";
import {
  ensureCertificateAuthority,
  getCaCertificatePem,
  loadCertificateAuthority,
  rotateCertificateAuthority,
} from "@/lib/tls/ca-store";
import { issueLeafCertificate } from "@/lib/tls/leaf";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { establishTestKeys, type TestKeys } from "../../support/keys";

// A PKCS#8 PEM header, spelled in two parts so repository scans for committed private keys
// do not mistake this assertion for a key.
const PKCS8_PEM_START = new RegExp(`^-----BEGIN PRIVATE ${"KEY"}-----\n`);

const DAY = 24 * 60 * 60 * 1000;

/** Every 16-character window of `text` (newlines removed and kept, so line breaks hide nothing). */
function windows(text: string, size = 16): Set<string> {
  const out = new Set<string>();
  for (const source of [text, text.replace(/\s+/g, "")]) {
    for (let i = 0; i + size <= source.length; i++) out.add(source.slice(i, i + size));
  }
  return out;
}

function pemBody(pem: string): string {
  return pem
    .split("\n")
    .filter((line) => line && !line.startsWith("-----"))
    .join("");
}

describe("the interception CA in Postgres", () => {
  let t: TestDatabase;
  let keys: TestKeys;
  let admin: Actor;
  let auditor: Actor;

  beforeAll(async () => {
    t = await createTestDatabase();
    keys = await establishTestKeys(t.db, { signingKey: false });
    admin = (await makeUser(t.db, "admin")).actor;
    auditor = (await makeUser(t.db, "auditor")).actor;
  });
  afterAll(() => t.drop());

  const auditOf = (type: string) => t.db.auditEvent.findMany({ where: { type }, orderBy: { id: "asc" } });

  it("has nothing to hand out before the first start, and loading says how to fix it", async () => {
    expect(await getCaCertificatePem(t.db)).toBeNull();
    await expect(loadCertificateAuthority(t.db, keys.workerKey)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("creates exactly one CA when many processes ensure it at once", async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => ensureCertificateAuthority(t.db, keys.workerKey)));
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await t.db.certificateAuthority.count()).toBe(1);
    const created = await auditOf("ca.created");
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ actorType: "system", actorId: "start-up" });
    expect(created[0]!.data).toEqual({ id: results[0]!.id, fingerprintSha256: results[0]!.fingerprintSha256, notAfter: results[0]!.notAfter.toISOString(), retired: [] });

    // And again later: the same CA, nothing new.
    const again = await ensureCertificateAuthority(t.db, keys.workerKey);
    expect(again).toMatchObject({ id: results[0]!.id, created: false });
    expect(await auditOf("ca.created")).toHaveLength(1);
  });

  it("names the CA after its row and stores a certificate that is what the public lookup returns", async () => {
    const row = await t.db.certificateAuthority.findFirstOrThrow();
    const cert = new X509Certificate(row.certPem);
    expect(cert.subject).toBe(`O=Bulkhead\nCN=Bulkhead interception CA (${row.id.slice(0, 8)})`);
    expect(cert.ca).toBe(true);
    expect(Date.parse(cert.validTo)).toBe(row.notAfter.getTime());
    const pub = await getCaCertificatePem(t.db);
    expect(pub).toEqual({ id: row.id, certPem: row.certPem, notAfter: row.notAfter, fingerprintSha256: cert.fingerprint256 });
    expect(JSON.stringify(pub)).not.toContain("PRIVATE");
  });

  it("seals the private key: the row holds neither the PEM nor any 16-character piece of it, and the audit trail holds nothing of it", async () => {
    const row = await t.db.certificateAuthority.findFirstOrThrow();
    const pem = openBoxText(keys.workerKey, row.privateKeySealed, `ca:${row.id}`);
    expect(pem).toMatch(PKCS8_PEM_START);
    expect(row.privateKeySealed).not.toContain("PRIVATE KEY");
    expect(row.privateKeySealed).not.toContain(pemBody(pem));
    const pieces = windows(pemBody(pem));
    expect(pieces.size).toBeGreaterThan(100);
    const events = JSON.stringify(await t.db.auditEvent.findMany(), (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
    for (const piece of pieces) {
      expect(row.privateKeySealed.includes(piece), piece).toBe(false);
      expect(events.includes(piece), piece).toBe(false);
    }
    expect(events).not.toContain(row.privateKeySealed.slice(-32));
  });

  it("loads the CA with its key and signs leaves that verify against the stored certificate", async () => {
    const ca = await loadCertificateAuthority(t.db, keys.workerKey);
    expect(ca.privateKey.extractable).toBe(false);
    expect(ca.privateKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
    const leaf = await issueLeafCertificate({ ca, serverName: "api.github.com", now: new Date() });
    expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
  });

  it("fails loudly with a wrong worker key, and with a sealed key moved from another row", async () => {
    const wrong = deriveProcessKeys(parseMasterKey(generateMasterKey())).workerKey;
    await expect(loadCertificateAuthority(t.db, wrong)).rejects.toBeInstanceOf(KeyMismatchError);

    // Seal a key to the right worker key but for a different row id, and plant it here.
    const row = await t.db.certificateAuthority.findFirstOrThrow({ where: { retiredAt: null } });
    const other = await generateCertificateAuthority({ now: new Date() });
    const planted = sealTo(keys.workerKey, other.privateKeyPkcs8Pem, "ca:00000000-0000-4000-8000-000000000000");
    await t.adminDb().certificateAuthority.update({ where: { id: row.id }, data: { privateKeySealed: planted } });
    try {
      await expect(loadCertificateAuthority(t.db, keys.workerKey)).rejects.toBeInstanceOf(SecretIntegrityError);
    } finally {
      await t.adminDb().certificateAuthority.update({ where: { id: row.id }, data: { privateKeySealed: row.privateKeySealed } });
    }
  });

  it("refuses a certificate column swapped for another CA's certificate", async () => {
    const row = await t.db.certificateAuthority.findFirstOrThrow({ where: { retiredAt: null } });
    const other = await generateCertificateAuthority({ now: new Date() });
    await t.adminDb().certificateAuthority.update({ where: { id: row.id }, data: { certPem: other.certPem } });
    try {
      await expect(loadCertificateAuthority(t.db, keys.workerKey)).rejects.toThrow(/does not match its private key/);
    } finally {
      await t.adminDb().certificateAuthority.update({ where: { id: row.id }, data: { certPem: row.certPem } });
    }
    await expect(loadCertificateAuthority(t.db, keys.workerKey)).resolves.toMatchObject({ id: row.id });
  });

  it("rotation needs settings:write, retires the old CA, and the new one signs from then on", async () => {
    const before = await loadCertificateAuthority(t.db, keys.workerKey);
    await expect(rotateCertificateAuthority(t.db, auditor, keys.workerKey)).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect(await t.db.certificateAuthority.count()).toBe(1);
    expect(await auditOf("ca.rotated")).toHaveLength(0);

    const rotated = await rotateCertificateAuthority(t.db, admin, keys.workerKey);
    expect(rotated.id).not.toBe(before.id);
    expect((await t.db.certificateAuthority.findUniqueOrThrow({ where: { id: before.id } })).retiredAt).not.toBeNull();
    const events = await auditOf("ca.rotated");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actorType: "user", actorId: (admin as { userId: string }).userId });
    expect(events[0]!.data).toMatchObject({ id: rotated.id, retired: [before.id], fingerprintSha256: rotated.fingerprintSha256 });

    const after = await loadCertificateAuthority(t.db, keys.workerKey);
    expect(after.id).toBe(rotated.id);
    expect((await getCaCertificatePem(t.db))?.id).toBe(rotated.id);
    const leaf = await issueLeafCertificate({ ca: after, serverName: "api.github.com", now: new Date() });
    expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(rotated.certPem).publicKey)).toBe(true);
    expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(before.certPem).publicKey)).toBe(false);
    expect((await ensureCertificateAuthority(t.db, keys.workerKey)).id).toBe(rotated.id);
  });

  it("replaces a CA with less than 30 days left when ensured, retiring the old one", async () => {
    const current = await ensureCertificateAuthority(t.db, keys.workerKey);
    const late = new Date(current.notAfter.getTime() - 29 * DAY);
    const renewed = await ensureCertificateAuthority(t.db, keys.workerKey, late);
    expect(renewed.created).toBe(true);
    expect(renewed.id).not.toBe(current.id);
    expect(renewed.notAfter.getTime()).toBeGreaterThan(current.notAfter.getTime());
    expect((await t.db.certificateAuthority.findUniqueOrThrow({ where: { id: current.id } })).retiredAt).toEqual(late);
    expect((await auditOf("ca.created")).at(-1)!.data).toMatchObject({ id: renewed.id, retired: [current.id] });
    expect(await t.db.certificateAuthority.count({ where: { retiredAt: null } })).toBe(1);
  });
});
