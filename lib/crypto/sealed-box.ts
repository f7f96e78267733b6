/**
 * Sealed boxes: a secret that anyone holding a public key can seal and only the holder of the
 * private key can open. Bulkhead seals upstream credentials and the interception CA's private
 * key to the proxy worker's key, so the dashboard (which stores credentials) can never read one
 * back: it holds only the public half.
 *
 *   sb1.<recipient fingerprint 16 hex>.<ephemeral X25519 public key>.<iv>.<ciphertext+tag>
 *
 * (base64url parts). Each seal uses a fresh ephemeral X25519 key; the content key is
 * HKDF-SHA256(X25519(ephemeral, recipient), salt = ephemeral || recipient, info = the version
 * label), and AES-256-GCM authenticates the version, the recipient's fingerprint and the record's
 * aad, so a box moved to another row, re-addressed or altered does not open.
 *
 * Error messages never include plaintext, key material or the sealed text.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from "node:crypto";
import { assertAad, decodePart, KeyMismatchError, MasterKeyError, SecretIntegrityError } from "./envelope";

const VERSION = "sb1";
const LABEL = "bulkhead/sealed-box/v1";
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FINGERPRINT = /^[0-9a-f]{16}$/;
// DER wrappings of a raw X25519 key (RFC 8410).
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

/** Who a box is sealed to: enough to seal, nothing that opens. */
export interface BoxRecipient {
  publicKey: KeyObject;
  /** The raw 32-byte public key. */
  raw: Buffer;
  /** Short, non-secret identifier carried in every box sealed to this key. */
  fingerprint: string;
}

/** The private side: opens boxes. Held only by the process the boxes are for. */
export interface BoxKeyPair extends BoxRecipient {
  privateKey: KeyObject;
}

/** "sb1" fingerprint of a raw X25519 public key. */
export function boxFingerprint(raw: Buffer): string {
  return createHash("sha256").update(`${LABEL}/recipient\0`).update(raw).digest("hex").slice(0, 16);
}

function rawPublicKey(key: KeyObject): Buffer {
  const raw = key.export({ type: "spki", format: "der" }).subarray(SPKI_X25519_PREFIX.length);
  if (raw.length !== KEY_BYTES) throw new MasterKeyError("not an X25519 public key");
  return raw;
}

/** The recipient for a raw 32-byte X25519 public key. */
export function boxRecipientFromRaw(raw: Buffer): BoxRecipient {
  if (!Buffer.isBuffer(raw) || raw.length !== KEY_BYTES) throw new MasterKeyError("an X25519 public key is 32 bytes");
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, raw]), format: "der", type: "spki" });
  return { publicKey, raw: Buffer.from(raw), fingerprint: boxFingerprint(raw) };
}

/** The key pair whose private scalar is `seed` (32 bytes, e.g. derived with HKDF). */
export function boxKeyPairFromSeed(seed: Buffer): BoxKeyPair {
  if (!Buffer.isBuffer(seed) || seed.length !== KEY_BYTES) throw new MasterKeyError("an X25519 private key is 32 bytes");
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, seed]), format: "der", type: "pkcs8" });
  const raw = rawPublicKey(createPublicKey(privateKey));
  return { ...boxRecipientFromRaw(raw), privateKey };
}

function contentKey(shared: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", shared, Buffer.concat([ephemeral, recipient]), LABEL, KEY_BYTES));
}

function boxAad(fingerprint: string, aad: string): Buffer {
  return Buffer.from(`${LABEL}\0${fingerprint}\0${aad}`, "utf8");
}

function agree(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey });
  } catch {
    // OpenSSL refuses low-order points (an all-zero shared secret).
    throw new SecretIntegrityError("the ephemeral key is not a usable X25519 key");
  }
  if (shared.length !== KEY_BYTES || shared.every((b) => b === 0)) {
    throw new SecretIntegrityError("the ephemeral key is not a usable X25519 key");
  }
  return shared;
}

/** Seals `plaintext` so that only `recipient`'s private key opens it; `aad` names the record. */
export function sealTo(recipient: BoxRecipient, plaintext: string | Uint8Array, aad: string): string {
  assertAad(aad);
  const data = typeof plaintext === "string" ? Buffer.from(plaintext, "utf8") : Buffer.from(plaintext);
  const ephemeral = generateKeyPairSync("x25519");
  const ephemeralRaw = rawPublicKey(ephemeral.publicKey);
  const shared = agree(ephemeral.privateKey, recipient.publicKey);
  const key = contentKey(shared, ephemeralRaw, recipient.raw);
  try {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(boxAad(recipient.fingerprint, aad));
    const body = Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]);
    return [VERSION, recipient.fingerprint, ephemeralRaw.toString("base64url"), iv.toString("base64url"), body.toString("base64url")].join(".");
  } finally {
    shared.fill(0);
    key.fill(0);
    if (typeof plaintext !== "string") data.fill(0);
  }
}

/** True when `sealed` has the sealed-box shape (it may still fail to open). */
export function isSealedBox(sealed: string): boolean {
  return typeof sealed === "string" && sealed.startsWith(`${VERSION}.`);
}

/** The fingerprint of the key a box was sealed to (no decryption). */
export function sealedBoxRecipient(sealed: string): string {
  const parts = typeof sealed === "string" ? sealed.split(".") : [];
  if (parts[0] === "v1" && parts.length === 6) {
    throw new SecretIntegrityError("the secret is still in the legacy master-key format; `bulkhead start` converts it to the worker's key");
  }
  const [version, fingerprint] = parts;
  if (parts.length !== 5 || version !== VERSION || fingerprint === undefined || !FINGERPRINT.test(fingerprint)) {
    throw new SecretIntegrityError("sealed secret is not a sealed box of a supported version");
  }
  return fingerprint;
}

/** Verifies and opens a box. The caller should zero the returned buffer when done. */
export function openBox(keyPair: BoxKeyPair, sealed: string, aad: string): Buffer {
  assertAad(aad);
  const fingerprint = sealedBoxRecipient(sealed);
  if (!timingSafeEqual(Buffer.from(fingerprint), Buffer.from(keyPair.fingerprint))) {
    throw new KeyMismatchError(fingerprint, keyPair.fingerprint);
  }
  const [, , ephemeralText = "", ivText = "", bodyText = ""] = sealed.split(".");
  const ephemeralRaw = decodePart(ephemeralText, "ephemeral key", KEY_BYTES);
  const iv = decodePart(ivText, "iv", IV_BYTES);
  const body = decodePart(bodyText, "ciphertext");
  if (body.length < TAG_BYTES) throw new SecretIntegrityError("ciphertext is truncated");
  let ephemeral: KeyObject;
  try {
    ephemeral = boxRecipientFromRaw(ephemeralRaw).publicKey;
  } catch {
    throw new SecretIntegrityError("the ephemeral key is not an X25519 key");
  }
  const shared = agree(keyPair.privateKey, ephemeral);
  const key = contentKey(shared, ephemeralRaw, keyPair.raw);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(boxAad(fingerprint, aad));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new SecretIntegrityError("ciphertext does not authenticate (tampered, or aad of another record)");
    }
  } finally {
    shared.fill(0);
    key.fill(0);
  }
}

/** Convenience for UTF-8 secrets. */
export function openBoxText(keyPair: BoxKeyPair, sealed: string, aad: string): string {
  const bytes = openBox(keyPair, sealed, aad);
  try {
    return bytes.toString("utf8");
  } finally {
    bytes.fill(0);
  }
}
