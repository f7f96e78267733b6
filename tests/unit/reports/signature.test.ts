import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { reportVerificationKey, signReport, verifyReport } from "@/lib/reports/signature";

const seed = randomBytes(32);
const keys = [reportVerificationKey(seed)];
const pdf = Buffer.from("%PDF-1.7\nnot really a report\n%%EOF\n");
const signed = signReport(seed, pdf, "task_1", new Date("2026-12-01T10:00:00.000Z"));
const text = (over: Record<string, unknown> = {}, drop: string[] = []) =>
  JSON.stringify(Object.fromEntries(Object.entries({ ...signed, ...over }).filter(([k]) => !drop.includes(k))), null, 2);

/**
 * verify-report accepts exactly the signature file Bulkhead writes: the one alg, the one field
 * set, the signature in its one encoding. Anything else is a document Bulkhead did not write, so
 * "Report OK" would vouch for words (or an algorithm) nobody signed.
 */
describe("report signature verification", () => {
  it("verifies the signature as written (the file, and the API's header decoded)", () => {
    expect(verifyReport(pdf, `${text()}\n`, keys)).toMatchObject({ ok: true, taskId: "task_1", keyId: keys[0]!.keyId });
    expect(verifyReport(pdf, text(), keys)).toMatchObject({ ok: true });
    expect(verifyReport(pdf, JSON.stringify(signed), keys)).toMatchObject({ ok: true });
  });

  const b64 = Buffer.from(signed.signature, "base64url").toString("base64");
  it.each([
    ["alg none", text({ alg: "none" }), /alg is "none"; Bulkhead report signatures are EdDSA only/],
    ["another alg", text({ alg: "ES256" }), /EdDSA only/],
    ["an added note", text({ note: "approved by auditor" }), /field\(s\) a Bulkhead signature does not have: note/],
    ["a missing alg", text({}, ["alg"]), /missing fields: alg/],
    ["the signature with = padding", text({ signature: `${signed.signature}==` }), /unpadded base64url/],
    ["the signature in standard base64", text({ signature: b64 }), /unpadded base64url/],
    ["the signature with non-zero trailing bits", text({ signature: `${signed.signature.slice(0, 85)}${signed.signature[85] === "B" ? "C" : "B"}` }), /unpadded base64url|does not verify/],
    ["a keyId that is not a report key id", text({ keyId: "ack_0123456789abcdef" }), /not a report key id/],
    ["a size that is a string", text({ size: String(signed.size) }), /size is not a byte count/],
    ["an upper-case sha256", text({ sha256: signed.sha256.toUpperCase() }), /sha256 is not 64 lowercase hex/],
    ["a generatedAt in another form", text({ generatedAt: "2026-12-01T10:00:00Z" }), /generatedAt is not an ISO time/],
    ["an array", JSON.stringify([signed]), /not a JSON object/],
    ["a repeated alg (JSON.parse keeps the last)", text().replace('"alg": "EdDSA"', '"alg": "none",\n  "alg": "EdDSA"'), /not in the form Bulkhead writes/],
    ["fields in another order", JSON.stringify(Object.fromEntries(Object.entries(signed).reverse()), null, 2), /not in the form Bulkhead writes/],
  ])("refuses %s", (_name, sig, problem) => {
    const r = verifyReport(pdf, sig, keys);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toMatch(problem);
  });

  it("standard base64 decodes to the same bytes, so only the strict form tells it apart", () => {
    // Without '+' or '/' in it the standard encoding differs only by its padding; with them, by characters.
    expect(b64).not.toBe(signed.signature);
    expect(Buffer.from(b64, "base64url").equals(Buffer.from(signed.signature, "base64url"))).toBe(true);
  });

  it("still refuses a changed PDF and an unknown key", () => {
    expect(verifyReport(Buffer.concat([pdf, Buffer.from(" ")]), text(), keys)).toMatchObject({ ok: false });
    expect(verifyReport(pdf, text(), [reportVerificationKey(randomBytes(32))])).toMatchObject({ ok: false, problem: expect.stringMatching(/not among the trusted/) });
  });
});
