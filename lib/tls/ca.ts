/**
 * The interception certificate authority: a self-signed ECDSA P-256 root that signs the proxy's
 * per-server-name leaf certificates. Pure: no database, no clock (time is an argument).
 */
import { AppError } from "@/lib/errors/app-error";
import {
  CLOCK_SKEW_MS,
  cryptoImpl,
  EC_KEY_ALGORITHM,
  EC_SIGNING_ALGORITHM,
  pemEncode,
  randomSerialHex,
  sha256Hex,
  subtle,
  x509,
} from "./x509";

const DAY_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_CA_VALIDITY_DAYS = 730;
const MAX_CA_VALIDITY_DAYS = 3650;
/** X.520 upper bound for a common name. */
const MAX_COMMON_NAME = 64;

export interface GenerateCertificateAuthorityOptions {
  /** Defaults to `Bulkhead interception CA (<8 hex>)` with a random short id. */
  commonName?: string;
  now: Date;
  validityDays?: number;
}

export interface GeneratedCertificateAuthority {
  certPem: string;
  /** The private key, PKCS#8 PEM. Seal it before it touches storage. */
  privateKeyPkcs8Pem: string;
  notBefore: Date;
  notAfter: Date;
}

/** The subject common name Bulkhead gives its CAs; `shortId` tells rotated CAs apart in trust stores. */
export function caCommonName(shortId: string): string {
  if (!/^[0-9a-f]{8}$/.test(shortId)) throw new TypeError("CA short id must be 8 lower-case hex characters");
  return `Bulkhead interception CA (${shortId})`;
}

export async function generateCertificateAuthority(options: GenerateCertificateAuthorityOptions): Promise<GeneratedCertificateAuthority> {
  const validityDays = options.validityDays ?? DEFAULT_CA_VALIDITY_DAYS;
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > MAX_CA_VALIDITY_DAYS) {
    throw new AppError("INVALID_INPUT", `CA validity must be a whole number of days between 1 and ${MAX_CA_VALIDITY_DAYS}`);
  }
  const now = options.now.getTime();
  if (!Number.isFinite(now)) throw new TypeError("now must be a valid Date");

  const keys = (await subtle.generateKey(EC_KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const spki = await subtle.exportKey("spki", keys.publicKey);
  const commonName = options.commonName ?? caCommonName(sha256Hex(spki).slice(0, 8));
  if (commonName.length === 0 || commonName.length > MAX_COMMON_NAME) {
    throw new AppError("INVALID_INPUT", `CA common name must be 1 to ${MAX_COMMON_NAME} characters`);
  }

  const notBefore = new Date(now - CLOCK_SKEW_MS);
  const notAfter = new Date(now + validityDays * DAY_MS);
  // JSON names are encoded attribute by attribute, so nothing in commonName is parsed as DN syntax.
  const name: x509.JsonName = [{ O: ["Bulkhead"] }, { CN: [commonName] }];
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerialHex(),
      name,
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: EC_SIGNING_ALGORITHM,
      extensions: [
        // pathLen 0: this CA signs leaves only, never another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, cryptoImpl),
      ],
    },
    cryptoImpl,
  );
  const pkcs8 = await subtle.exportKey("pkcs8", keys.privateKey);
  return {
    certPem: cert.toString("pem"),
    privateKeyPkcs8Pem: pemEncode(pkcs8, "PRIVATE KEY"),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
