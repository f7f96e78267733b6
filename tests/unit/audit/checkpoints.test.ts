import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checkpointSignatureValid, checkpointVerificationKey, signCheckpoint } from "@/lib/audit/checkpoints";

const master = randomBytes(32);
const other = randomBytes(32);
const hash = "c0".repeat(32);

describe("signed audit checkpoints", () => {
  it("derive one key per master key, with the key id as the public key's fingerprint", () => {
    const a = checkpointVerificationKey(master);
    expect(checkpointVerificationKey(Buffer.from(master))).toEqual(a);
    expect(a.keyId).toMatch(/^ack_[0-9a-f]{16}$/);
    expect(Buffer.from(a.publicKey, "base64url")).toHaveLength(32);
    expect(checkpointVerificationKey(other).keyId).not.toBe(a.keyId);
  });

  it("verify under the signer's key only", () => {
    const cp = signCheckpoint(master, 10n, hash);
    expect(checkpointSignatureValid(cp, [checkpointVerificationKey(master)])).toBe(true);
    expect(checkpointSignatureValid(cp, [checkpointVerificationKey(other)])).toBe(false);
    expect(checkpointSignatureValid(cp, [])).toBe(false);
  });

  it("reject a checkpoint whose seq, hash or signature was changed", () => {
    const keys = [checkpointVerificationKey(master)];
    const cp = signCheckpoint(master, 10n, hash);
    expect(checkpointSignatureValid({ ...cp, seq: 11n }, keys)).toBe(false);
    expect(checkpointSignatureValid({ ...cp, hash: "c1".repeat(32) }, keys)).toBe(false);
    const sig = Buffer.from(cp.signature, "base64url");
    sig[0]! ^= 1;
    expect(checkpointSignatureValid({ ...cp, signature: sig.toString("base64url") }, keys)).toBe(false);
    expect(checkpointSignatureValid({ ...cp, signature: "not base64" }, keys)).toBe(false);
  });

  it("reject another key presented under the trusted key's id", () => {
    const trusted = checkpointVerificationKey(master);
    const forged = signCheckpoint(other, 10n, hash);
    const impostor = { keyId: trusted.keyId, publicKey: checkpointVerificationKey(other).publicKey };
    expect(checkpointSignatureValid({ ...forged, keyId: trusted.keyId }, [impostor])).toBe(false);
  });

  it("refuse to sign nonsense", () => {
    expect(() => signCheckpoint(master, -1n, hash)).toThrow(TypeError);
    expect(() => signCheckpoint(master, 1n, "xyz")).toThrow(TypeError);
    expect(() => checkpointVerificationKey(randomBytes(16))).toThrow(TypeError);
  });
});
