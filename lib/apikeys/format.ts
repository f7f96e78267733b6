import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * API key format: `bk_<prefix>_<secret>`.
 * - prefix: 8 lowercase letters/digits, stored in clear, unique: it finds the row and lets people
 *   recognise a key in the list without it being a secret;
 * - secret: 43 letters/digits (~256 random bits).
 *
 * Only the SHA-256 of the whole key is stored. A slow password hash (argon2) exists to make
 * guessing low-entropy passwords expensive; a 256-bit random key cannot be guessed however fast
 * the hash is, and a slow hash on every API request would only hand attackers a cheap way to
 * burn our CPU.
 */
export const API_KEY_PATTERN = /^bk_([a-z0-9]{8})_([A-Za-z0-9]{43})$/;
const PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Uniform random characters (rejection sampling, no modulo bias). */
function randomString(alphabet: string, length: number): string {
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit && out.length < length) out += alphabet[byte % alphabet.length];
    }
  }
  return out;
}

export interface GeneratedApiKey {
  key: string;
  prefix: string;
  hash: string;
}

export function generateApiKey(): GeneratedApiKey {
  const prefix = randomString(PREFIX_ALPHABET, 8);
  const key = `bk_${prefix}_${randomString(SECRET_ALPHABET, 43)}`;
  return { key, prefix, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** The prefix of a well-formed key, or null. Nothing else is looked up for a malformed key. */
export function apiKeyPrefix(presented: string): string | null {
  return API_KEY_PATTERN.exec(presented)?.[1] ?? null;
}

/** Constant-time comparison of the presented key's hash with the stored hash. */
export function apiKeyMatches(presented: string, storedHash: string): boolean {
  const a = Buffer.from(hashApiKey(presented), "hex");
  const b = Buffer.from(storedHash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** How a key is shown after creation: its prefix only. */
export function displayPrefix(prefix: string): string {
  return `bk_${prefix}_…`;
}
