import { generateCertificateAuthority } from "@/lib/tls/ca";
import { importCaPrivateKey } from "@/lib/tls/x509";

export const NOW = new Date("2026-03-01T12:00:00.000Z");
export const HOUR = 60 * 60 * 1000;
export const DAY = 24 * HOUR;

/** A CA generated at `now` with its private key imported for signing. */
export async function makeCa(options: { now?: Date; validityDays?: number; commonName?: string } = {}) {
  const generated = await generateCertificateAuthority({ now: options.now ?? NOW, validityDays: options.validityDays, commonName: options.commonName });
  const privateKey = await importCaPrivateKey(generated.privateKeyPkcs8Pem);
  return { ...generated, issuing: { certPem: generated.certPem, privateKey } };
}
