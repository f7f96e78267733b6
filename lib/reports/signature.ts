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

// In the order signReport writes them.
const SIGNATURE_FIELDS = ["format", "version", "alg", "keyId", "sha256", "taskId", "generatedAt", "size", "signature"] as const;
/** 64 bytes in unpadded base64url: 86 characters, the last carrying 2 bits that must be zero. */
const SIGNATURE_B64URL = /^[A-Za-z0-9_-]{86}$/;

/**
 * Parses a signature file strictly: exactly the form `signReport` writes (the fields above and no
 * other, alg EdDSA, the signature in unpadded base64url that re-encodes to itself). A verifier
 * that accepted `alg: "none"`, an added `note` or a padded signature would vouch for a document
 * Bulkhead never wrote; a string saying what is wrong otherwise.
 */
export function parseReportSignature(text: string): ReportSignature | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return "the signature file is not JSON";
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "the signature file is not a JSON object";
  const o = doc as Record<string, unknown>;
  if (o.format !== "bulkhead-report-signature" || o.version !== 1) return "not a Bulkhead report signature (format 1)";
  // The text itself as written (2-space indented, the fields in order, one final newline or none):
  // JSON.parse keeps the last of a repeated key, which another reader might not.
  const body = text.endsWith("\n") ? text.slice(0, -1) : text;
  if (body !== JSON.stringify(o, null, 2) && body !== JSON.stringify(o)) return "the signature file is not in the form Bulkhead writes (a repeated key or other spacing)";
  const extra = Object.keys(o).filter((k) => !(SIGNATURE_FIELDS as readonly string[]).includes(k));
  if (extra.length > 0) return `the signature file has field(s) a Bulkhead signature does not have: ${extra.join(", ")}`;
  const missing = SIGNATURE_FIELDS.filter((k) => !(k in o));
  if (missing.length > 0) return `the signature file is missing fields: ${missing.join(", ")}`;
  if (Object.keys(o).some((k, i) => k !== SIGNATURE_FIELDS[i])) return "the signature file is not in the form Bulkhead writes (fields in another order)";
  if (o.alg !== "EdDSA") return `the signature's alg is ${JSON.stringify(o.alg)}; Bulkhead report signatures are EdDSA only`;
  if (typeof o.keyId !== "string" || !/^brk_[0-9a-f]{16}$/.test(o.keyId)) return "the signature's keyId is not a report key id (brk_ and 16 hex digits)";
  if (typeof o.taskId !== "string" || o.taskId === "") return "the signature's taskId is not a task id";
  if (typeof o.generatedAt !== "string" || Number.isNaN(Date.parse(o.generatedAt)) || new Date(o.generatedAt).toISOString() !== o.generatedAt) return "the signature's generatedAt is not an ISO time";
  if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size < 0) return "the signature's size is not a byte count";
  if (typeof o.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(o.sha256)) return "the signature's sha256 is not 64 lowercase hex digits";
  if (typeof o.signature !== "string" || !SIGNATURE_B64URL.test(o.signature) || Buffer.from(o.signature, "base64url").toString("base64url") !== o.signature) {
    return "the signature is not a 64-byte Ed25519 signature in unpadded base64url (the one encoding Bulkhead writes)";
  }
  return o as unknown as ReportSignature;
}

/** Checks a detached signature against the PDF's bytes and the given public keys. */
export function verifyReport(pdf: Buffer, signatureText: string, keys: readonly ReportKey[]): ReportVerification {
  const doc = parseReportSignature(signatureText);
  if (typeof doc === "string") return { ok: false, problem: doc };
  if (pdf.length !== doc.size) return { ok: false, problem: `the PDF is ${pdf.length} bytes, the signed one was ${doc.size}` };
  if (createHash("sha256").update(pdf).digest("hex") !== doc.sha256) return { ok: false, problem: "the PDF's SHA-256 differs from the signed one: it was changed" };
  const key = keys.find((k) => k.keyId === doc.keyId);
  if (!key) return { ok: false, problem: `signed by ${doc.keyId}, which is not among the trusted report keys` };
  const raw = Buffer.from(key.publicKey, "base64url");
  if (raw.length !== 32 || reportKeyId(raw) !== key.keyId) return { ok: false, problem: `the trusted key ${key.keyId} does not match its own id` };
  try {
    const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: key.publicKey }, format: "jwk" });
    if (verify(null, message(doc), publicKey, Buffer.from(doc.signature, "base64url"))) {
      return { ok: true, keyId: key.keyId, taskId: doc.taskId, generatedAt: doc.generatedAt };
    }
  } catch {
    // a malformed key or signature fails below
  }
  return { ok: false, problem: "the signature does not verify" };
}
