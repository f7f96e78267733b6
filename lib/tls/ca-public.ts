/**
 * The public side of the interception CA: what agents put in their trust store. Deliberately
 * free of the certificate library and of the private key, so the dashboard can serve it cheaply.
 */
import { X509Certificate } from "node:crypto";
import type { Db } from "@/lib/db/client";

export interface CaCertificateInfo {
  id: string;
  certPem: string;
  notAfter: Date;
  /** SHA-256 of the DER certificate, upper-case hex pairs joined by colons (openssl's format). */
  fingerprintSha256: string;
}

/** The aad that binds a CA's sealed private key to its row. */
export function caKeyAad(id: string): string {
  return `ca:${id}`;
}

export function caCertificateInfo(row: { id: string; certPem: string; notAfter: Date }): CaCertificateInfo {
  return { id: row.id, certPem: row.certPem, notAfter: row.notAfter, fingerprintSha256: new X509Certificate(row.certPem).fingerprint256 };
}

/** The newest non-retired CA that is valid at `now` (never selects the sealed key). */
export async function currentCaRow(db: Pick<Db, "certificateAuthority">, now: Date) {
  return db.certificateAuthority.findFirst({
    where: { retiredAt: null, notAfter: { gt: now } },
    orderBy: { createdAt: "desc" },
    select: { id: true, certPem: true, notAfter: true },
  });
}

/** The current CA certificate (public by nature), or null before one was created. */
export async function getCaCertificatePem(db: Pick<Db, "certificateAuthority">, now: Date = new Date()): Promise<CaCertificateInfo | null> {
  const row = await currentCaRow(db, now);
  return row ? caCertificateInfo(row) : null;
}
