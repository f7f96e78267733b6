/**
 * One place that wires @peculiar/x509 to Node's WebCrypto (a process-wide setting, made on
 * import), and the few PEM/key helpers the CA and the leaf issuer share. No I/O, no clock.
 * Import @peculiar/x509 through this module only: the Reflect metadata polyfill must load first.
 */
// @peculiar/x509 needs the Reflect metadata API before it loads.
import "reflect-metadata";
import { createHash, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

// The library's extension helpers (SubjectKeyIdentifierExtension.create, PublicKey.export) use
// the global provider; we also pass `webcrypto` explicitly wherever an API accepts it.
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle as unknown as SubtleCrypto;
export const cryptoImpl = webcrypto as unknown as Crypto;

/** ECDSA over P-256 with SHA-256: accepted by every TLS stack Bulkhead's agents use. */
export const EC_KEY_ALGORITHM: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
export const EC_SIGNING_ALGORITHM: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

export const HOUR_MS = 60 * 60 * 1000;
/** notBefore is backdated this much so a client whose clock is a little behind still accepts. */
export const CLOCK_SKEW_MS = HOUR_MS;

/** A fresh positive serial with 128 random bits (RFC 5280: at most 20 octets, CAB: >= 64 random bits). */
export function randomSerialHex(): string {
  // The library strips leading zero octets and prepends 0x00 when the top bit is set, so the
  // DER INTEGER is always positive and minimally encoded.
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString("hex");
}

export function pemEncode(der: ArrayBuffer, label: "PRIVATE KEY" | "CERTIFICATE"): string {
  return x509.PemConverter.encode(der, label);
}

/** Lower-case hex SHA-256 of arbitrary bytes (used for short ids). */
export function sha256Hex(data: ArrayBuffer | Uint8Array): string {
  return createHash("sha256").update(Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data)).digest("hex");
}

/** Imports a PKCS#8 PEM ECDSA P-256 private key as a non-extractable signing key. */
export async function importCaPrivateKey(pkcs8Pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(pkcs8Pem);
  return subtle.importKey("pkcs8", der, EC_KEY_ALGORITHM, false, ["sign"]);
}
