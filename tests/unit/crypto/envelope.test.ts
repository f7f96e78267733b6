import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  generateMasterKey,
  keyFingerprint,
  MasterKeyError,
  KeyMismatchError,
  openSecret,
  openSecretText,
  parseMasterKey,
  sealedKeyFingerprint,
  sealSecret,
  SecretIntegrityError,
} from "@/lib/crypto/envelope";

const KEY = Buffer.from("7a".repeat(16) + "c3".repeat(16), "hex");
const OTHER = Buffer.from("11".repeat(32), "hex");
const SECRET = "sk_live_51HqLyjWDarjtT1zdp7dcXv9bS0mQhV2ErxkPz8A";
const AAD = "credential:cred_123";

function needles(plain: Buffer): Set<string> {
  const forms = [plain.toString("utf8"), plain.toString("hex"), plain.toString("hex").toUpperCase()];
  // base64 of every alignment, so a leak at any byte offset is caught.
  for (let shift = 0; shift < 3; shift++) {
    const tail = plain.subarray(shift);
    forms.push(tail.toString("base64"), tail.toString("base64url"));
  }
  const out = new Set<string>();
  for (const form of forms) for (let i = 0; i + 4 <= form.length; i++) out.add(form.slice(i, i + 4));
  return out;
}

/**
 * Needles found in EVERY one of several independent seals. A real leak is deterministic and shows
 * up in all of them; a 4-char coincidence with random ciphertext does not repeat.
 */
function leakedNeedles(plain: Buffer, seals: string[]): string[] {
  return [...needles(plain)].filter((n) => seals.every((s) => s.includes(n)));
}

function flipBase64url(part: string, byteIndex: number): string {
  const bytes = Buffer.from(part, "base64url");
  const i = byteIndex % bytes.length;
  bytes[i] = (bytes[i] ?? 0) ^ 0x01;
  return bytes.toString("base64url");
}

describe("sealSecret / openSecret", () => {
  it("round trips text and bytes, including empty and binary", () => {
    expect(openSecretText(sealSecret(SECRET, KEY, AAD), KEY, AAD)).toBe(SECRET);
    expect(openSecretText(sealSecret("", KEY, AAD), KEY, AAD)).toBe("");
    const bytes = randomBytes(1000);
    expect(openSecret(sealSecret(bytes, KEY, AAD), KEY, AAD).equals(bytes)).toBe(true);
  });

  it("has the documented shape and a fresh random IV/data key per seal", () => {
    const a = sealSecret(SECRET, KEY, AAD);
    const b = sealSecret(SECRET, KEY, AAD);
    expect(a).toMatch(/^v1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{64}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(sealedKeyFingerprint(a)).toBe(keyFingerprint(KEY));
  });

  it("ciphertext contains no 4-char piece of the secret in raw, base64, base64url or hex form", () => {
    for (const secret of [SECRET, "hunter2hunter2hunter2", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "ghp_" + "x".repeat(36)]) {
      const plain = Buffer.from(secret, "utf8");
      const seals = [1, 2, 3].map(() => sealSecret(secret, KEY, AAD));
      expect(leakedNeedles(plain, seals)).toEqual([]);
    }
  });

  it("wrong key fails loudly with KeyMismatchError, naming fingerprints only", () => {
    const sealed = sealSecret(SECRET, KEY, AAD);
    let error: unknown;
    try {
      openSecret(sealed, OTHER, AAD);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyMismatchError);
    const message = (error as Error).message;
    expect(message).toContain(keyFingerprint(KEY));
    expect(message).toContain(keyFingerprint(OTHER));
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain(sealed.split(".")[5]);
  });

  it("tampering with any part fails", () => {
    const sealed = sealSecret(SECRET, KEY, AAD);
    const parts = sealed.split(".");
    for (const index of [2, 3, 4, 5]) {
      for (const byte of [0, 7, 31, 47]) {
        const copy = [...parts];
        copy[index] = flipBase64url(copy[index] ?? "", byte);
        expect(() => openSecret(copy.join("."), KEY, AAD), `part ${index} byte ${byte}`).toThrow(SecretIntegrityError);
      }
    }
    const fp = [...parts];
    fp[1] = "0000000000000000";
    expect(() => openSecret(fp.join("."), KEY, AAD)).toThrow(KeyMismatchError);
    const bad = [
      sealed.replace(/^v1/, "v2"),
      sealed.slice(0, -1),
      `${sealed}A`,
      `${sealed}.`,
      parts.slice(0, 5).join("."),
      sealed.replace(/\.([^.]+)$/, ".$1=="),
      sealed.replace(/\.([^.]+)$/, ".!$1"),
      "",
      "not a sealed secret",
    ];
    for (const text of bad) expect(() => openSecret(text, KEY, AAD), text.slice(0, 30)).toThrow(SecretIntegrityError);
  });

  it("refuses a re-spelling of the ciphertext that decodes to the same bytes", () => {
    const sealed = sealSecret(SECRET, KEY, AAD); // 48 + 16 bytes: the last char has 4 spare bits
    const parts = sealed.split(".");
    const content = parts[5] ?? "";
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(content.at(-1) ?? "A");
    const respelled = content.slice(0, -1) + alphabet[last ^ 1];
    expect(Buffer.from(respelled, "base64url").equals(Buffer.from(content, "base64url"))).toBe(true);
    parts[5] = respelled;
    expect(() => openSecret(parts.join("."), KEY, AAD)).toThrow(SecretIntegrityError);
  });

  it("parts cannot be mixed between two seals", () => {
    const a = sealSecret(SECRET, KEY, AAD).split(".");
    const b = sealSecret("another secret", KEY, AAD).split(".");
    const mixed = [a[0], a[1], a[2], a[3], b[4], b[5]].join(".");
    expect(() => openSecret(mixed, KEY, AAD)).toThrow(SecretIntegrityError);
  });

  it("is bound to its record: a ciphertext moved to another record fails", () => {
    const sealed = sealSecret(SECRET, KEY, "credential:cred_123");
    for (const aad of ["credential:cred_124", "credential:cred_12", "signing-key:cred_123"]) {
      let error: unknown;
      try {
        openSecret(sealed, KEY, aad);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SecretIntegrityError);
      expect((error as Error).message).not.toContain(SECRET);
    }
    expect(() => sealSecret(SECRET, KEY, "")).toThrow(TypeError);
  });

  it("rejects a master key of the wrong size", () => {
    expect(() => sealSecret(SECRET, randomBytes(16), AAD)).toThrow(MasterKeyError);
    expect(() => openSecret(sealSecret(SECRET, KEY, AAD), randomBytes(31), AAD)).toThrow(MasterKeyError);
  });

  it("property: round trip for any bytes and any aad", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.string({ minLength: 1, maxLength: 64 }), (data, aad) => {
        const sealed = sealSecret(data, KEY, aad);
        expect(openSecret(sealed, KEY, aad).equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("property: round trip for any unicode text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (text) => {
        expect(openSecretText(sealSecret(text, KEY, AAD), KEY, AAD)).toBe(text);
      }),
      { numRuns: 200 },
    );
  });
});

describe("master keys", () => {
  it("parses base64, base64url and hex spellings of the same key", () => {
    const key = randomBytes(32);
    for (const text of [
      key.toString("base64"),
      key.toString("base64").replace(/=$/, ""),
      key.toString("base64url"),
      key.toString("hex"),
      key.toString("hex").toUpperCase(),
      `${key.toString("base64url")}\n`,
    ]) {
      expect(parseMasterKey(text).equals(key)).toBe(true);
    }
    expect(parseMasterKey(generateMasterKey())).toHaveLength(32);
  });

  it("rejects anything else with a clear message that does not echo the input", () => {
    const wrong = [
      randomBytes(31).toString("base64"),
      randomBytes(33).toString("base64url"),
      randomBytes(31).toString("hex"),
      "correct horse battery staple",
      "",
      "0".repeat(64),
      `${randomBytes(32).toString("base64url").slice(0, 42)}B`, // non-canonical trailing bits
      `${randomBytes(32).toString("base64url")}A`,
    ];
    for (const text of wrong) {
      let error: unknown;
      try {
        parseMasterKey(text);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(text)).toBeInstanceOf(MasterKeyError);
      if (text.length > 4) expect((error as Error).message).not.toContain(text);
    }
  });

  it("fingerprint is short, stable and distinguishes keys", () => {
    expect(keyFingerprint(KEY)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyFingerprint(KEY)).toBe(keyFingerprint(Buffer.from(KEY)));
    expect(keyFingerprint(KEY)).not.toBe(keyFingerprint(OTHER));
  });
});
