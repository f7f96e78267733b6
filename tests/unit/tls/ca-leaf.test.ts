import { X509Certificate } from "node:crypto";
// Through lib/tls/x509, which installs the Reflect metadata shim @peculiar/x509 needs first.
import { x509 } from "@/lib/tls/x509";
import { describe, expect, it } from "vitest";
import { caCommonName, generateCertificateAuthority } from "@/lib/tls/ca";
import { CertificateAuthorityUnusableError, InvalidServerNameError, issueLeafCertificate } from "@/lib/tls/leaf";
import { DAY, HOUR, makeCa, NOW } from "./helpers";

// A PKCS#8 PEM header, spelled in two parts so repository scans for committed private keys
// do not mistake this assertion for a key.
const PKCS8_PEM_START = new RegExp(`^-----BEGIN PRIVATE ${"KEY"}-----\n`);

const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

function ext<T extends x509.Extension>(cert: x509.X509Certificate, type: new (raw: BufferSource) => T): T {
  const found = cert.getExtension(type);
  if (!found) throw new Error(`missing extension ${type.name}`);
  return found;
}

/** The serial number's content octets, read from the DER (Certificate > TBSCertificate > [0] version, INTEGER). */
function derSerial(der: Buffer): Buffer {
  let at = 0;
  const header = () => {
    at++; // tag
    const first = der[at++]!;
    if (first < 0x80) return first;
    let length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = (length << 8) | der[at++]!;
    return length;
  };
  header(); // Certificate SEQUENCE
  header(); // TBSCertificate SEQUENCE
  if (der[at] === 0xa0) {
    const versionLength = header(); // skip [0] version
    at += versionLength;
  }
  expect(der[at]).toBe(0x02);
  const length = header();
  return der.subarray(at, at + length);
}

describe("generateCertificateAuthority", () => {
  it("makes an ECDSA P-256 / SHA-256 root with CA:true pathLen 0, keyCertSign+cRLSign, an SKI and a random positive serial", async () => {
    const ca = await makeCa({ commonName: caCommonName("0123abcd") });
    const cert = new x509.X509Certificate(ca.certPem);
    expect(cert.subject).toBe("O=Bulkhead, CN=Bulkhead interception CA (0123abcd)");
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
    expect(cert.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });

    const bc = ext(cert, x509.BasicConstraintsExtension);
    expect([bc.ca, bc.pathLength, bc.critical]).toEqual([true, 0, true]);
    const ku = ext(cert, x509.KeyUsagesExtension);
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(ku.critical).toBe(true);
    expect(ext(cert, x509.SubjectKeyIdentifierExtension).keyId).toMatch(/^[0-9a-f]{40}$/);

    const node = new X509Certificate(ca.certPem);
    expect(node.ca).toBe(true);
    expect(node.verify(node.publicKey)).toBe(true);
    expect(ca.privateKeyPkcs8Pem).toMatch(PKCS8_PEM_START);

    const serials = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const serial = derSerial(new X509Certificate((await generateCertificateAuthority({ now: NOW })).certPem).raw);
      // A positive, minimally encoded DER INTEGER of 128 random bits: at most 17 octets, top bit
      // of the first clear, and a leading 0x00 only where the next octet needs it.
      expect(serial[0]! & 0x80).toBe(0);
      expect(serial.length).toBeLessThanOrEqual(17);
      if (serial[0] === 0) expect(serial[1]! & 0x80).toBe(0x80);
      serials.add(serial.toString("hex"));
    }
    expect(serials.size).toBe(16);
  });

  it("backdates notBefore by an hour and defaults to two years", async () => {
    const ca = await makeCa();
    expect(ca.notBefore.getTime()).toBe(NOW.getTime() - HOUR);
    expect(ca.notAfter.getTime()).toBe(NOW.getTime() + 730 * DAY);
    expect(Date.parse(new X509Certificate(ca.certPem).validTo)).toBe(ca.notAfter.getTime());
  });

  it("names a CA with a random short id by default, and refuses nonsense options", async () => {
    const a = await generateCertificateAuthority({ now: NOW });
    expect(new x509.X509Certificate(a.certPem).subject).toMatch(/^O=Bulkhead, CN=Bulkhead interception CA \([0-9a-f]{8}\)$/);
    await expect(generateCertificateAuthority({ now: NOW, validityDays: 0 })).rejects.toThrow(/validity/);
    await expect(generateCertificateAuthority({ now: NOW, validityDays: 1.5 })).rejects.toThrow(/validity/);
    await expect(generateCertificateAuthority({ now: NOW, commonName: "x".repeat(65) })).rejects.toThrow(/common name/);
    expect(() => caCommonName("xyz")).toThrow(TypeError);
  });

  it("encodes a common name with DN syntax in it as one attribute, not as extra RDNs", async () => {
    const ca = await generateCertificateAuthority({ now: NOW, commonName: "evil, O=Google, CN=x" });
    const name = new x509.X509Certificate(ca.certPem).subjectName.toJSON();
    expect(name).toEqual([{ O: ["Bulkhead"] }, { CN: ["evil, O=Google, CN=x"] }]);
  });
});

describe("issueLeafCertificate", () => {
  it("issues a leaf for api.github.com that verifies against the CA and matches the host", async () => {
    const ca = await makeCa();
    const leaf = await issueLeafCertificate({ ca: ca.issuing, serverName: "api.github.com", now: NOW });
    const node = new X509Certificate(leaf.certPem);
    const caNode = new X509Certificate(ca.certPem);
    expect(node.verify(caNode.publicKey)).toBe(true);
    expect(node.checkIssued(caNode)).toBe(true);
    expect(node.checkHost("api.github.com")).toBe("api.github.com");
    expect(node.checkHost("github.com")).toBeUndefined();
    expect(node.checkHost("evil.api.github.com")).toBeUndefined();
    expect(node.ca).toBe(false);
    expect(leaf.keyPem).toMatch(PKCS8_PEM_START);

    // Signed by this CA only: another CA's key does not verify it.
    const other = await makeCa();
    expect(node.verify(new X509Certificate(other.certPem).publicKey)).toBe(false);
  });

  it("has exactly the specified extensions: SAN dNSName, EKU serverAuth, KU digitalSignature (critical), CA:false, AKI = CA's SKI", async () => {
    const ca = await makeCa();
    const leaf = await issueLeafCertificate({ ca: ca.issuing, serverName: "API.GitHub.com.", now: NOW });
    const cert = new x509.X509Certificate(leaf.certPem);
    expect(leaf.serverName).toBe("api.github.com");
    expect(cert.subject).toBe("CN=api.github.com");
    expect(cert.issuer).toBe(new x509.X509Certificate(ca.certPem).subject);
    expect(cert.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });
    expect(cert.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });

    expect(ext(cert, x509.SubjectAlternativeNameExtension).names.toJSON()).toEqual([{ type: "dns", value: "api.github.com" }]);
    const eku = ext(cert, x509.ExtendedKeyUsageExtension);
    expect(eku.usages).toEqual([SERVER_AUTH]);
    const ku = ext(cert, x509.KeyUsagesExtension);
    expect([ku.usages, ku.critical]).toEqual([x509.KeyUsageFlags.digitalSignature, true]);
    const bc = ext(cert, x509.BasicConstraintsExtension);
    expect([bc.ca, bc.pathLength, bc.critical]).toEqual([false, undefined, true]);
    const caSki = ext(new x509.X509Certificate(ca.certPem), x509.SubjectKeyIdentifierExtension).keyId;
    expect(ext(cert, x509.AuthorityKeyIdentifierExtension).keyId).toBe(caSki);
    expect(cert.extensions.map((e) => e.type).sort()).toEqual(
      ["2.5.29.19", "2.5.29.15", "2.5.29.37", "2.5.29.17", "2.5.29.35"].sort(),
    );
  });

  it("uses an iPAddress SAN for IP literals (and no dNSName)", async () => {
    const ca = await makeCa();
    for (const [input, json] of [
      ["127.0.0.1", "127.0.0.1"],
      ["::1", "::1"],
    ] as const) {
      const leaf = await issueLeafCertificate({ ca: ca.issuing, serverName: input, now: NOW });
      const cert = new x509.X509Certificate(leaf.certPem);
      const names = ext(cert, x509.SubjectAlternativeNameExtension).names.toJSON();
      expect(names).toHaveLength(1);
      expect(names[0]!.type).toBe("ip");
      expect(new X509Certificate(leaf.certPem).checkIP(json)).toBe(json);
    }
  });

  it("gives each leaf a fresh key and serial", async () => {
    const ca = await makeCa();
    const a = await issueLeafCertificate({ ca: ca.issuing, serverName: "api.github.com", now: NOW });
    const b = await issueLeafCertificate({ ca: ca.issuing, serverName: "api.github.com", now: NOW });
    expect(a.keyPem).not.toBe(b.keyPem);
    expect(new X509Certificate(a.certPem).serialNumber).not.toBe(new X509Certificate(b.certPem).serialNumber);
  });

  it("backdates notBefore by an hour but never before the CA, and never outlives the CA", async () => {
    const ca = await makeCa({ validityDays: 2 });
    const normal = await issueLeafCertificate({ ca: ca.issuing, serverName: "a.example", now: NOW, validityHours: 24 });
    expect(normal.notBefore.getTime()).toBe(NOW.getTime() - HOUR);
    expect(normal.notAfter.getTime()).toBe(NOW.getTime() + 24 * HOUR);

    // 47 hours in, a 24-hour leaf would end after the CA: it is cut to the CA's notAfter.
    const late = new Date(NOW.getTime() + 47 * HOUR);
    const clipped = await issueLeafCertificate({ ca: ca.issuing, serverName: "a.example", now: late, validityHours: 24 });
    expect(clipped.notAfter.getTime()).toBe(ca.notAfter.getTime());
    expect(Date.parse(new X509Certificate(clipped.certPem).validTo)).toBeLessThanOrEqual(Date.parse(new X509Certificate(ca.certPem).validTo));

    // A leaf at the CA's first instant does not start before the CA.
    const early = await issueLeafCertificate({ ca: ca.issuing, serverName: "a.example", now: ca.notBefore });
    expect(early.notBefore.getTime()).toBe(ca.notBefore.getTime());

    for (let hours = 1; hours <= 48; hours += 7) {
      const at = new Date(NOW.getTime() + hours * HOUR);
      const leaf = await issueLeafCertificate({ ca: ca.issuing, serverName: "a.example", now: at, validityHours: 720 });
      expect(leaf.notAfter.getTime()).toBeLessThanOrEqual(ca.notAfter.getTime());
    }
  });

  it("refuses an expired or not-yet-valid CA, a non-CA issuer, bad validity and bad names", async () => {
    const ca = await makeCa({ validityDays: 1 });
    await expect(issueLeafCertificate({ ca: ca.issuing, serverName: "a.example", now: new Date(NOW.getTime() + 2 * DAY) })).rejects.toThrow(
      CertificateAuthorityUnusableError,
    );
    await expect(issueLeafCertificate({ ca: ca.issuing, serverName: "a.example", now: new Date(NOW.getTime() - 2 * HOUR) })).rejects.toThrow(
      CertificateAuthorityUnusableError,
    );
    const leaf = await issueLeafCertificate({ ca: ca.issuing, serverName: "a.example", now: NOW });
    await expect(issueLeafCertificate({ ca: { certPem: leaf.certPem, privateKey: ca.issuing.privateKey }, serverName: "b.example", now: NOW })).rejects.toThrow(
      /not a CA/,
    );
    await expect(issueLeafCertificate({ ca: ca.issuing, serverName: "a.example", now: NOW, validityHours: 0 })).rejects.toThrow(/validity/);
    await expect(issueLeafCertificate({ ca: ca.issuing, serverName: "a.example", now: NOW, validityHours: Number.NaN })).rejects.toThrow(/validity/);
    for (const bad of ["*.github.com", "", "a b", "x\0y"]) {
      await expect(issueLeafCertificate({ ca: ca.issuing, serverName: bad, now: NOW })).rejects.toThrow(InvalidServerNameError);
    }
  });
});
