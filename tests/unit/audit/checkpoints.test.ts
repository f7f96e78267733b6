import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checkpointSignatureValid, checkpointVerificationKey, signChainedCheckpoint, signCheckpoint } from "@/lib/audit/checkpoints";
import { checkpointDocument, parseCheckpointDocument } from "@/lib/audit/outside/sink";

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

  it("chain format 2: the signature covers the number, the time and the previous signature", () => {
    const keys = [checkpointVerificationKey(master)];
    const first = signChainedCheckpoint(master, 10n, hash, { number: 1n, signedAt: new Date(1_700_000_000_123), prevSignature: null });
    const second = signChainedCheckpoint(master, 20n, "d1".repeat(32), { number: 2n, signedAt: new Date(1_700_000_010_000), prevSignature: first.signature });
    expect(checkpointSignatureValid(first, keys)).toBe(true);
    expect(checkpointSignatureValid(second, keys)).toBe(true);
    const c = second.chain!;
    // Renumbered (a deleted one hidden), relinked, re-timed, or presented as format 1: all fail.
    expect(checkpointSignatureValid({ ...second, chain: { ...c, number: 1n } }, keys)).toBe(false);
    expect(checkpointSignatureValid({ ...second, chain: { ...c, prevSignature: second.signature } }, keys)).toBe(false);
    expect(checkpointSignatureValid({ ...second, chain: { ...c, signedAt: new Date(1_700_000_010_001) } }, keys)).toBe(false);
    expect(checkpointSignatureValid({ seq: second.seq, hash: second.hash, keyId: second.keyId, signature: second.signature }, keys)).toBe(false);
    expect(() => signChainedCheckpoint(master, 1n, hash, { number: 2n, signedAt: new Date(), prevSignature: null })).toThrow(TypeError);
    expect(() => signChainedCheckpoint(master, 1n, hash, { number: 1n, signedAt: new Date(), prevSignature: first.signature })).toThrow(TypeError);
  });

  it("published documents parse back exactly, and anything malformed is named, not guessed", () => {
    const cp = signChainedCheckpoint(master, 10n, hash, { number: 1n, signedAt: new Date(1_700_000_000_123), prevSignature: null });
    const text = JSON.stringify(checkpointDocument(cp as Parameters<typeof checkpointDocument>[0]));
    expect(parseCheckpointDocument(text)).toEqual(cp);
    const doc = JSON.parse(text) as Record<string, unknown>;
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...doc, version: 1 }, /format 2/],
      [{ ...doc, number: "0" }, /positive/],
      [{ ...doc, seq: "-1" }, /seq/],
      [{ ...doc, hash: "zz" }, /hash/],
      [{ ...doc, signedAt: "yesterday" }, /signedAt/],
      [{ ...doc, signature: "short" }, /signature/],
      [{ ...doc, prevSignature: cp.signature }, /exactly for checkpoint 1/],
    ];
    for (const [d, problem] of bad) expect(parseCheckpointDocument(JSON.stringify(d))).toMatch(problem);
    expect(parseCheckpointDocument("{")).toBe("not JSON");
    expect(parseCheckpointDocument("[]")).toBe("not a JSON object");
  });
});
