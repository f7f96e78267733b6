import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KeyMismatchError, sealSecret, SecretIntegrityError } from "@/lib/crypto/envelope";
import { boxKeyPairFromSeed, boxRecipientFromRaw, openBox, openBoxText, sealedBoxRecipient, sealTo } from "@/lib/crypto/sealed-box";

const worker = boxKeyPairFromSeed(randomBytes(32));
const other = boxKeyPairFromSeed(randomBytes(32));
/** What the dashboard holds: the public half only. */
const recipient = boxRecipientFromRaw(worker.raw);
const SECRET = "ghp_4f8Zq2LmN7vR1xT9kW3yB6cD0eH5jU8pA2sQ";
const AAD = "credential:7b0c7c6e-9d51-4a39-9d49-2f1d6f0f4b11";

function flip(part: string, index: number): string {
  const bytes = Buffer.from(part, "base64url");
  bytes[index % bytes.length] = (bytes[index % bytes.length] ?? 0) ^ 0x01;
  return bytes.toString("base64url");
}

const opensWith = (sealed: string, aad = AAD, pair = worker) => () => openBox(pair, sealed, aad);

describe("sealed boxes: anyone with the public key seals, only the private key opens", () => {
  it("round trips text and bytes sealed with the public half alone", () => {
    expect(openBoxText(worker, sealTo(recipient, SECRET, AAD), AAD)).toBe(SECRET);
    expect(openBoxText(worker, sealTo(recipient, "", AAD), AAD)).toBe("");
    const bytes = randomBytes(4096);
    expect(openBox(worker, sealTo(recipient, bytes, AAD), AAD).equals(bytes)).toBe(true);
  });

  it("has the documented shape, names its recipient, and uses a fresh ephemeral key per seal", () => {
    const a = sealTo(recipient, SECRET, AAD);
    const b = sealTo(recipient, SECRET, AAD);
    expect(a).toMatch(/^sb1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealedBoxRecipient(a)).toBe(worker.fingerprint);
    expect(a.split(".")[2]).not.toBe(b.split(".")[2]);
    expect(a).not.toContain(Buffer.from(SECRET).toString("base64url").slice(0, 12));
  });

  it("the public half opens nothing: no key derivable from what the sealer holds opens a box", () => {
    const sealed = sealTo(recipient, SECRET, AAD);
    // The public key used as a private scalar, or as a symmetric key: both fail closed.
    expect(opensWith(sealed, AAD, boxKeyPairFromSeed(recipient.raw))).toThrow(KeyMismatchError);
    const forged = { ...boxKeyPairFromSeed(recipient.raw), fingerprint: worker.fingerprint, raw: worker.raw, publicKey: worker.publicKey };
    expect(opensWith(sealed, AAD, forged)).toThrow(SecretIntegrityError);
  });

  it("a wrong key fails with a clear KeyMismatchError naming fingerprints only", () => {
    const sealed = sealTo(recipient, SECRET, AAD);
    let error: unknown;
    try {
      openBox(other, sealed, AAD);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyMismatchError);
    expect((error as Error).message).toContain(worker.fingerprint);
    expect((error as Error).message).toContain(other.fingerprint);
    expect((error as Error).message).not.toContain(SECRET);
    expect((error as Error).message).not.toContain(sealed.split(".")[4]);
  });

  it("a re-addressed box (fingerprint rewritten to another key) still opens only for its real recipient", () => {
    const parts = sealTo(boxRecipientFromRaw(other.raw), SECRET, AAD).split(".");
    parts[1] = worker.fingerprint;
    expect(opensWith(parts.join("."))).toThrow(SecretIntegrityError);
  });

  it("tampering with any part, or the aad of another record, fails closed", () => {
    const sealed = sealTo(recipient, SECRET, AAD);
    const parts = sealed.split(".");
    for (const index of [2, 3, 4]) {
      for (const byte of [0, 5, 11, 31, 40]) {
        const copy = [...parts];
        copy[index] = flip(copy[index] ?? "", byte);
        expect(opensWith(copy.join(".")), `part ${index} byte ${byte}`).toThrow(SecretIntegrityError);
      }
    }
    expect(opensWith(sealed, "credential:another-row")).toThrow(SecretIntegrityError);
    const malformed = [
      "",
      "sb1",
      sealed.replace(/^sb1/, "sb2"),
      sealed.slice(0, -1),
      `${sealed}A`,
      `${sealed}.`,
      parts.slice(0, 4).join("."),
      sealed.replace(/\.([^.]+)$/, ".$1=="),
      `${parts[0]}.${parts[1]}.${Buffer.alloc(32).toString("base64url")}.${parts[3]}.${parts[4]}`, // low-order ephemeral key
      `${parts[0]}.${parts[1]}.${parts[2]}.${parts[3]}.${Buffer.alloc(8).toString("base64url")}`, // shorter than a tag
    ];
    for (const text of malformed) expect(opensWith(text), text.slice(0, 24)).toThrow(SecretIntegrityError);
  });

  it("says what to do with a value still in the legacy master-key format", () => {
    const legacy = sealSecret(SECRET, randomBytes(32), AAD);
    expect(opensWith(legacy)).toThrow(/legacy master-key format; `bulkhead start` converts it/);
  });

  it("refuses keys of the wrong size", () => {
    expect(() => boxKeyPairFromSeed(randomBytes(31))).toThrow(/32 bytes/);
    expect(() => boxRecipientFromRaw(randomBytes(33))).toThrow(/32 bytes/);
    expect(() => sealTo(recipient, SECRET, "")).toThrow(/aad/);
  });
});
