/**
 * Leaf certificates for TLS interception: one per server name, signed by the interception CA.
 * Pure: no database, no clock (time is an argument).
 *
 * Each leaf gets its own fresh P-256 key. Generating one costs well under a millisecond next to
 * the signature, leaves are cached per name, and a leaf key that leaks (a heap dump, a core
 * file) then impersonates one name for at most `validityHours`, not every name the proxy serves.
 */
import { AppError } from "@/lib/errors/app-error";
import { validateServerName } from "./server-name";
import { CLOCK_SKEW_MS, cryptoImpl, EC_KEY_ALGORITHM, EC_SIGNING_ALGORITHM, HOUR_MS, pemEncode, randomSerialHex, subtle, x509 } from "./x509";

export { InvalidServerNameError, sameServerName, validateServerName, type ServerName, type ServerNameProblem } from "./server-name";

export const DEFAULT_LEAF_VALIDITY_HOURS = 24;
const MAX_LEAF_VALIDITY_HOURS = 24 * 30;

/** The CA as the issuer needs it: its certificate and its private signing key. */
export interface IssuingCertificateAuthority {
  certPem: string;
  privateKey: CryptoKey;
}

export interface IssueLeafCertificateOptions {
  ca: IssuingCertificateAuthority;
  serverName: string;
  now: Date;
  validityHours?: number;
}

export interface IssuedLeafCertificate {
  /** The canonical server name the certificate is for. */
  serverName: string;
  certPem: string;
  /** PKCS#8 PEM of the leaf's private key. */
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

/** The CA cannot issue (expired, not yet valid, or not a CA certificate). */
export class CertificateAuthorityUnusableError extends AppError {
  constructor(message: string) {
    super("CONFIG", message);
    this.name = "CertificateAuthorityUnusableError";
  }
}

export async function issueLeafCertificate(options: IssueLeafCertificateOptions): Promise<IssuedLeafCertificate> {
  const target = validateServerName(options.serverName);
  const validityHours = options.validityHours ?? DEFAULT_LEAF_VALIDITY_HOURS;
  if (!(validityHours > 0 && validityHours <= MAX_LEAF_VALIDITY_HOURS)) {
    throw new AppError("INVALID_INPUT", `leaf validity must be more than 0 and at most ${MAX_LEAF_VALIDITY_HOURS} hours`);
  }
  const now = options.now.getTime();
  if (!Number.isFinite(now)) throw new TypeError("now must be a valid Date");

  const caCert = new x509.X509Certificate(options.ca.certPem);
  const constraints = caCert.getExtension(x509.BasicConstraintsExtension);
  if (!constraints?.ca) throw new CertificateAuthorityUnusableError("the issuing certificate is not a CA certificate");
  if (caCert.notAfter.getTime() <= now) throw new CertificateAuthorityUnusableError("the interception CA has expired; rotate it");
  if (caCert.notBefore.getTime() > now) throw new CertificateAuthorityUnusableError("the interception CA is not valid yet");

  // Never outlive the CA, never start before it: a chain validator rejects either.
  const notBefore = new Date(Math.max(now - CLOCK_SKEW_MS, caCert.notBefore.getTime()));
  const notAfter = new Date(Math.min(now + validityHours * HOUR_MS, caCert.notAfter.getTime()));

  const keys = (await subtle.generateKey(EC_KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const authorityKeyId = caKeyId
    ? new x509.AuthorityKeyIdentifierExtension(caKeyId)
    : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, cryptoImpl);

  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialHex(),
      subject: [{ CN: [target.name] }],
      issuer: caCert.subjectName,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: options.ca.privateKey,
      signingAlgorithm: EC_SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: target.kind === "ip" ? "ip" : "dns", value: target.name }]),
        authorityKeyId,
      ],
    },
    cryptoImpl,
  );
  const pkcs8 = await subtle.exportKey("pkcs8", keys.privateKey);
  return { serverName: target.name, certPem: cert.toString("pem"), keyPem: pemEncode(pkcs8, "PRIVATE KEY"), notBefore: cert.notBefore, notAfter: cert.notAfter };
}
