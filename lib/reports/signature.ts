/**
 * Detached signatures over report PDFs: Ed25519 over the PDF's SHA-256 with the task, the time
 * of generation and the size, so a changed byte, a truncated file or a report presented as
 * another task's fails. The key is the dashboard's report key (derived from the master key,
 * lib/keys/process-keys.ts); its public half is published at /.well-known/bulkhead-audit-keys.json
 * and `bulkhead audit verify-report` checks offline.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export interface ReportKey {
  keyId: string;
  /** Raw Ed25519 public key, base64url. */
  publicKey: string;
}

export interface ReportSignature {
  format: "bulkhead-report-signature";
  version: 1;
  alg: "EdDSA";
  keyId: string;
  taskId: string;
  generatedAt: string;
  size: number;
  sha256: string;
  signature: string;
}

function privateKeyOf(seed: Buffer): KeyObject {
  if (seed.length !== 32) throw new TypeError("the report key must be 32 bytes");
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
}

export function reportKeyId(raw: Buffer): string {
  return `brk_${createHash("sha256").update(raw).digest("hex").slice(0, 16)}`;
}

export function reportVerificationKey(seed: Buffer): ReportKey {
  const jwk = createPublicKey(privateKeyOf(seed)).export({ format: "jwk" });
  const raw = Buffer.from(jwk.x as string, "base64url");
  return { keyId: reportKeyId(raw), publicKey: raw.toString("base64url") };
}

function message(s: Pick<ReportSignature, "sha256" | "taskId" | "generatedAt" | "size">): Buffer {
  return Buffer.from(`bulkhead-report-signature-v1|${s.sha256}|${s.taskId}|${s.generatedAt}|${s.size}`, "utf8");
}

export function signReport(seed: Buffer, pdf: Buffer, taskId: string, generatedAt: Date): ReportSignature {
  const body = { sha256: createHash("sha256").update(pdf).digest("hex"), taskId, generatedAt: generatedAt.toISOString(), size: pdf.length };
  return {
    format: "bulkhead-report-signature",
    version: 1,
    alg: "EdDSA",
    keyId: reportVerificationKey(seed).keyId,
    ...body,
    signature: sign(null, message(body), privateKeyOf(seed)).toString("base64url"),
  };
}

export type ReportVerification = { ok: true; keyId: string; taskId: string; generatedAt: string } | { ok: false; problem: string };

/** Checks a detached signature against the PDF's bytes and the given public keys. */
export function verifyReport(pdf: Buffer, signatureText: string, keys: readonly ReportKey[]): ReportVerification {
  let doc: Partial<ReportSignature>;
  try {
    doc = JSON.parse(signatureText) as Partial<ReportSignature>;
  } catch {
    return { ok: false, problem: "the signature file is not JSON" };
  }
  if (doc.format !== "bulkhead-report-signature" || doc.version !== 1 || typeof doc.signature !== "string" || typeof doc.keyId !== "string") {
    return { ok: false, problem: "not a Bulkhead report signature (format 1)" };
  }
  if (typeof doc.taskId !== "string" || typeof doc.generatedAt !== "string" || typeof doc.size !== "number" || typeof doc.sha256 !== "string") {
    return { ok: false, problem: "the signature file is missing fields" };
  }
  if (pdf.length !== doc.size) return { ok: false, problem: `the PDF is ${pdf.length} bytes, the signed one was ${doc.size}` };
  if (createHash("sha256").update(pdf).digest("hex") !== doc.sha256) return { ok: false, problem: "the PDF's SHA-256 differs from the signed one: it was changed" };
  const key = keys.find((k) => k.keyId === doc.keyId);
  if (!key) return { ok: false, problem: `signed by ${doc.keyId}, which is not among the trusted report keys` };
  const raw = Buffer.from(key.publicKey, "base64url");
  if (raw.length !== 32 || reportKeyId(raw) !== key.keyId) return { ok: false, problem: `the trusted key ${key.keyId} does not match its own id` };
  try {
    const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: key.publicKey }, format: "jwk" });
    if (verify(null, message(doc as ReportSignature), publicKey, Buffer.from(doc.signature, "base64url"))) {
      return { ok: true, keyId: key.keyId, taskId: doc.taskId, generatedAt: doc.generatedAt };
    }
  } catch {
    // a malformed signature fails below
  }
  return { ok: false, problem: "the signature does not verify" };
}
