/**
 * The interception CA in Postgres: one current (non-retired) CA, its private key sealed to the
 * proxy worker's key (a sealed box: whoever creates a CA, the worker or `bulkhead ca rotate`,
 * needs only the worker's public key; only the worker opens it) and bound to the row by the aad
 * `ca:<id>`. Creation and rotation take an advisory lock so concurrent starts create exactly one CA.
 */
import { createPrivateKey, createPublicKey, randomUUID, X509Certificate } from "node:crypto";
import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { openBox, sealTo, type BoxKeyPair, type BoxRecipient } from "@/lib/crypto/sealed-box";
import { AppError } from "@/lib/errors/app-error";
import { assertSealingKeyCurrent } from "@/lib/keys/generation";
import { caCommonName, generateCertificateAuthority } from "./ca";
import { caKeyAad as aadFor, caCertificateInfo as info, currentCaRow, type CaCertificateInfo } from "./ca-public";
import { EC_KEY_ALGORITHM, subtle } from "./x509";

export { getCaCertificatePem, type CaCertificateInfo } from "./ca-public";

/** Serialises CA creation and rotation (distinct from migrations 72707369 and signing keys 72707370). */
const CA_LOCK = 72707371;
/** A CA closer than this to expiry is replaced, so agents' trust stores never hold a CA about to lapse. */
const MIN_REMAINING_MS = 30 * 24 * 60 * 60 * 1000;
const STARTUP_ACTOR: Actor = { kind: "system", label: "start-up" };

type Tx = Prisma.TransactionClient;

/** The CA with its private key opened, for the proxy worker's leaf issuer. */
export interface LoadedCertificateAuthority {
  id: string;
  certPem: string;
  privateKey: CryptoKey;
  notAfter: Date;
}

async function lock(tx: Tx): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${CA_LOCK})`;
}

async function createCa(tx: Tx, worker: BoxRecipient, now: Date): Promise<CaCertificateInfo> {
  // A CA key sealed to a worker key that is not the data's could never be opened.
  await assertSealingKeyCurrent(tx, { worker: worker.fingerprint });
  const id = randomUUID();
  const ca = await generateCertificateAuthority({ commonName: caCommonName(id.slice(0, 8)), now });
  const privateKeySealed = sealTo(worker, ca.privateKeyPkcs8Pem, aadFor(id));
  await tx.certificateAuthority.create({ data: { id, certPem: ca.certPem, privateKeySealed, createdAt: now, notAfter: ca.notAfter } });
  return info({ id, certPem: ca.certPem, notAfter: ca.notAfter });
}

async function retireCurrent(tx: Tx, now: Date): Promise<string[]> {
  const current = await tx.certificateAuthority.findMany({ where: { retiredAt: null }, select: { id: true } });
  if (current.length > 0) await tx.certificateAuthority.updateMany({ where: { id: { in: current.map((c) => c.id) } }, data: { retiredAt: now } });
  return current.map((c) => c.id);
}

function auditData(ca: CaCertificateInfo, retired: string[]): Prisma.InputJsonValue {
  // Public facts only: never the key, sealed or not.
  return { id: ca.id, fingerprintSha256: ca.fingerprintSha256, notAfter: ca.notAfter.toISOString(), retired };
}

/**
 * The current CA if it is valid for at least 30 more days; otherwise creates one (retiring any
 * older CA) and records `ca.created`.
 */
export async function ensureCertificateAuthority(
  db: Db,
  worker: BoxRecipient,
  now: Date = new Date(),
  actor: Actor = STARTUP_ACTOR,
): Promise<CaCertificateInfo & { created: boolean }> {
  return db.$transaction(async (tx) => {
    await lock(tx);
    const current = await tx.certificateAuthority.findFirst({
      where: { retiredAt: null, notAfter: { gte: new Date(now.getTime() + MIN_REMAINING_MS) } },
      orderBy: { createdAt: "desc" },
      select: { id: true, certPem: true, notAfter: true },
    });
    if (current) return { ...info(current), created: false };
    const retired = await retireCurrent(tx, now);
    const ca = await createCa(tx, worker, now);
    await recordAuditEvent(tx, { type: "ca.created", actor, data: auditData(ca, retired) });
    return { ...ca, created: true };
  });
}

/** Retires the current CA and creates a new one at once (agents must trust the new certificate). */
export async function rotateCertificateAuthority(db: Db, actor: Actor, worker: BoxRecipient, now: Date = new Date()): Promise<CaCertificateInfo> {
  assertCan(actor, "settings:write");
  return db.$transaction(async (tx) => {
    await lock(tx);
    const retired = await retireCurrent(tx, now);
    const ca = await createCa(tx, worker, now);
    await recordAuditEvent(tx, { type: "ca.rotated", actor, data: auditData(ca, retired) });
    return ca;
  });
}

/**
 * The current CA with its private key opened with the worker key. A wrong key, a sealed key moved
 * from another row, or a certificate that does not belong to the key all throw.
 */
export async function loadCertificateAuthority(db: Db, workerKey: BoxKeyPair, now: Date = new Date()): Promise<LoadedCertificateAuthority> {
  const row = await currentCaRow(db, now);
  if (!row) {
    throw new AppError("NOT_FOUND", "There is no usable interception CA yet.", {
      userMessage: "There is no usable interception CA yet: start Bulkhead or run `bulkhead ca cert`.",
    });
  }
  const { privateKeySealed } = await db.certificateAuthority.findUniqueOrThrow({ where: { id: row.id }, select: { privateKeySealed: true } });
  const pem = openBox(workerKey, privateKeySealed, aadFor(row.id));
  let der: Buffer | undefined;
  try {
    const key = createPrivateKey({ key: pem, format: "pem" });
    // The certificate column is not sealed; only the key's owner could have signed it, so a
    // certificate with another public key means the row was tampered with.
    const spki = (k: Parameters<typeof createPublicKey>[0]) => createPublicKey(k).export({ type: "spki", format: "der" });
    if (!spki(key).equals(new X509Certificate(row.certPem).publicKey.export({ type: "spki", format: "der" }))) {
      throw new AppError("INTERNAL", `interception CA ${row.id}: the certificate does not match its private key`);
    }
    der = key.export({ type: "pkcs8", format: "der" });
    const view = new Uint8Array(der.buffer as ArrayBuffer, der.byteOffset, der.byteLength);
    const privateKey = await subtle.importKey("pkcs8", view, EC_KEY_ALGORITHM, false, ["sign"]);
    return { id: row.id, certPem: row.certPem, privateKey, notAfter: row.notAfter };
  } finally {
    pem.fill(0);
    der?.fill(0);
  }
}
