/**
 * Secrets at rest, symmetric: AES-256-GCM envelope encryption under a 32-byte sealing key.
 *
 * Each secret gets its own random data key; only that data key is encrypted ("wrapped") under the
 * sealing key. The serialised form carries a short fingerprint of the sealing key so that a wrong
 * key is reported as such instead of as corruption.
 *
 *   v1.<fingerprint 16 hex>.<wrapIv>.<wrappedKey+tag>.<dataIv>.<ciphertext+tag>   (base64url parts)
 *
 * Which key seals what is decided in lib/keys/: the dashboard's key seals task-token signing
 * keys; values only the worker may open use the X25519 sealed box (sealed-box.ts) instead. Data
 * written before per-process keys is in this format under the master key itself, and is
 * converted at start (lib/keys/reseal.ts).
 *
 * Error messages never include plaintext, key material or the sealed text.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AppError } from "@/lib/errors/app-error";
import { decodeMasterKeyText } from "./master-key-text";

const VERSION = "v1";
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FINGERPRINT_LABEL = "bulkhead-master-key-id";
// Domain separation: the wrapped data key is bound to the envelope version, the master key id and
// the record's aad, so it cannot be transplanted into another record or format.
const WRAP_AAD_PREFIX = "bulkhead/envelope/v1/data-key";

/** A key could not be parsed or is unusable. */
export class MasterKeyError extends AppError {
  constructor(message: string) {
    super("CONFIG", message);
    this.name = "MasterKeyError";
  }
}

/** The sealed secret was made for a different key than the one supplied. */
export class KeyMismatchError extends AppError {
  readonly expectedFingerprint: string;
  readonly actualFingerprint: string;
  constructor(expectedFingerprint: string, actualFingerprint: string) {
    super(
      "CONFIG",
      `secret was sealed for key ${expectedFingerprint} but this process holds key ${actualFingerprint}: ` +
        "the key configuration is wrong, or the master key was rotated and this process was not restarted",
    );
    this.name = "KeyMismatchError";
    this.expectedFingerprint = expectedFingerprint;
    this.actualFingerprint = actualFingerprint;
  }
}

/** The sealed secret is malformed, was tampered with, or belongs to another record (aad). */
export class SecretIntegrityError extends AppError {
  constructor(detail: string) {
    super("INTERNAL", `sealed secret failed integrity check: ${detail}`);
    this.name = "SecretIntegrityError";
  }
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Parses a 32-byte master key written as base64, base64url or 64 hex characters.
 * Surrounding whitespace (a trailing newline from a file) is ignored; anything else is rejected
 * (lib/crypto/master-key-text.ts, which configuration validation uses too).
 */
export function parseMasterKey(text: string): Buffer {
  const decoded = decodeMasterKeyText(text);
  if ("problem" in decoded) throw new MasterKeyError(decoded.problem);
  return decoded.key;
}

/** A fresh random master key as base64url text. */
export function generateMasterKey(): string {
  return randomBytes(KEY_BYTES).toString("base64url");
}

/** Short, stable, non-secret identifier of a 32-byte key (detects a wrong key). */
export function keyFingerprint(key: Buffer): string {
  assertKey32(key);
  return createHmac("sha256", key).update(FINGERPRINT_LABEL).digest("hex").slice(0, 16);
}

function assertKey32(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new MasterKeyError("sealing key must be a 32-byte Buffer");
  }
}

export function assertAad(aad: string): void {
  // An empty aad would make ciphertexts portable between records; always bind to something.
  if (typeof aad !== "string" || aad.length === 0) {
    throw new TypeError("aad must be a non-empty string identifying the record");
  }
}

function wrapAad(fingerprint: string, aad: string): Buffer {
  return Buffer.from(`${WRAP_AAD_PREFIX}\0${fingerprint}\0${aad}`, "utf8");
}

function gcmEncrypt(key: Buffer, plaintext: Buffer, aad: Buffer): { iv: Buffer; sealed: Buffer } {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, sealed: Buffer.concat([body, cipher.getAuthTag()]) };
}

function gcmDecrypt(key: Buffer, iv: Buffer, sealed: Buffer, aad: Buffer): Buffer | undefined {
  const body = sealed.subarray(0, sealed.length - TAG_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** Encrypts a secret for storage; `aad` names the record it belongs to (e.g. "bulkhead:signing-key:<kid>"). */
export function sealSecret(plaintext: string | Uint8Array, sealingKey: Buffer, aad: string): string {
  assertKey32(sealingKey);
  assertAad(aad);
  const fingerprint = keyFingerprint(sealingKey);
  const data = typeof plaintext === "string" ? Buffer.from(plaintext, "utf8") : Buffer.from(plaintext);
  const dataKey = randomBytes(KEY_BYTES);
  try {
    const content = gcmEncrypt(dataKey, data, Buffer.from(aad, "utf8"));
    const wrapped = gcmEncrypt(sealingKey, dataKey, wrapAad(fingerprint, aad));
    return [
      VERSION,
      fingerprint,
      wrapped.iv.toString("base64url"),
      wrapped.sealed.toString("base64url"),
      content.iv.toString("base64url"),
      content.sealed.toString("base64url"),
    ].join(".");
  } finally {
    dataKey.fill(0);
    if (typeof plaintext !== "string") data.fill(0);
  }
}

/** Strict base64url: one spelling per byte string, optional exact length; errors name the part only. */
export function decodePart(part: string, name: string, exactLength?: number): Buffer {
  if (!BASE64URL.test(part)) throw new SecretIntegrityError(`${name} is not base64url`);
  const bytes = Buffer.from(part, "base64url");
  if (bytes.toString("base64url") !== part) {
    throw new SecretIntegrityError(`${name} is not canonical base64url`);
  }
  if (exactLength !== undefined && bytes.length !== exactLength) {
    throw new SecretIntegrityError(`${name} has the wrong length`);
  }
  return bytes;
}

/** The fingerprint of the key a sealed secret was made with (no decryption). */
export function sealedKeyFingerprint(sealed: string): string {
  const parts = typeof sealed === "string" ? sealed.split(".") : [];
  const [version, fingerprint] = parts;
  if (parts.length !== 6 || version !== VERSION || fingerprint === undefined || !/^[0-9a-f]{16}$/.test(fingerprint)) {
    throw new SecretIntegrityError("sealed secret is malformed or of an unsupported version");
  }
  return fingerprint;
}

/** Verifies and decrypts a sealed secret. The caller should zero the returned buffer when done. */
export function openSecret(sealed: string, sealingKey: Buffer, aad: string): Buffer {
  assertKey32(sealingKey);
  assertAad(aad);
  const fingerprint = sealedKeyFingerprint(sealed);
  const actual = keyFingerprint(sealingKey);
  if (!timingSafeEqual(Buffer.from(fingerprint), Buffer.from(actual))) {
    throw new KeyMismatchError(fingerprint, actual);
  }
  const [, , wrapIvText = "", wrappedText = "", dataIvText = "", contentText = ""] = sealed.split(".");
  const wrapIv = decodePart(wrapIvText, "key iv", IV_BYTES);
  const wrapped = decodePart(wrappedText, "wrapped key", KEY_BYTES + TAG_BYTES);
  const dataIv = decodePart(dataIvText, "data iv", IV_BYTES);
  const content = decodePart(contentText, "ciphertext");
  if (content.length < TAG_BYTES) throw new SecretIntegrityError("ciphertext is truncated");

  const dataKey = gcmDecrypt(sealingKey, wrapIv, wrapped, wrapAad(fingerprint, aad));
  if (dataKey === undefined) {
    throw new SecretIntegrityError("data key does not authenticate (tampered, or aad of another record)");
  }
  try {
    const plaintext = gcmDecrypt(dataKey, dataIv, content, Buffer.from(aad, "utf8"));
    if (plaintext === undefined) {
      throw new SecretIntegrityError("ciphertext does not authenticate (tampered, or aad of another record)");
    }
    return plaintext;
  } finally {
    dataKey.fill(0);
  }
}

/** Convenience for UTF-8 secrets. */
export function openSecretText(sealed: string, sealingKey: Buffer, aad: string): string {
  const bytes = openSecret(sealed, sealingKey, aad);
  try {
    return bytes.toString("utf8");
  } finally {
    bytes.fill(0);
  }
}
