/**
 * The spelling of a master key, checked without any cryptography (no node:crypto import), so that
 * configuration validation (lib/config/common.ts, which the dashboard's request proxy also loads)
 * can refuse a malformed BULKHEAD_MASTER_KEY before anything starts. `parseMasterKey`
 * (lib/crypto/envelope.ts) is this check plus its error type.
 */
const KEY_BYTES = 32;
const HEX_64 = /^[0-9a-fA-F]{64}$/;
const BASE64_32 = /^[A-Za-z0-9+/]{43}=?$/;
const BASE64URL_32 = /^[A-Za-z0-9_-]{43}$/;

/**
 * A 32-byte master key written as base64, base64url or 64 hex characters, or why not.
 * Surrounding whitespace (a trailing newline from a file) is ignored; anything else is refused.
 */
export function decodeMasterKeyText(text: string): { key: Buffer } | { problem: string } {
  const trimmed = text.trim();
  let key: Buffer;
  if (HEX_64.test(trimmed)) {
    key = Buffer.from(trimmed, "hex");
  } else if (BASE64URL_32.test(trimmed)) {
    const decoded = decodeCanonical(trimmed, "base64url");
    if (!decoded) return { problem: "master key is not canonically encoded" };
    key = decoded;
  } else if (BASE64_32.test(trimmed)) {
    const decoded = decodeCanonical(trimmed.replace(/=$/, ""), "base64");
    if (!decoded) return { problem: "master key is not canonically encoded" };
    key = decoded;
  } else {
    return { problem: "master key must be 32 bytes written as base64 (44 chars), base64url (43 chars) or hex (64 chars)" };
  }
  if (key.length !== KEY_BYTES) return { problem: "master key must decode to exactly 32 bytes" };
  if (key.every((b) => b === 0)) return { problem: "master key is all zeros; generate a random key" };
  return { key };
}

// Node's decoder silently skips junk and ignores non-zero trailing bits; requiring a canonical
// round trip means one key has exactly one accepted spelling.
function decodeCanonical(text: string, encoding: "base64" | "base64url"): Buffer | null {
  const bytes = Buffer.from(text, encoding);
  return bytes.toString(encoding).replace(/=+$/, "") === text ? bytes : null;
}
