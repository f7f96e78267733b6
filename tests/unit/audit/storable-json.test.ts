import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isStorableJson, UNSTORABLE_JSON } from "@/lib/audit/sanitise";

describe("isStorableJson", () => {
  it("refuses the escapes jsonb refuses, in either case, and only when the backslash is not escaped", () => {
    expect(isStorableJson(JSON.stringify({ a: "x\u0000y" }))).toBe(false);
    expect(isStorableJson(JSON.stringify({ a: "x\ud800y" }))).toBe(false);
    expect(isStorableJson(JSON.stringify({ a: "x\udfffy" }))).toBe(false);
    expect(isStorableJson('{"a":"\\U0000"}')).toBe(false);
    expect(isStorableJson('{"a":"\\\\u0000"}')).toBe(true); // an escaped backslash, then text
    expect(isStorableJson(JSON.stringify({ a: "\u00e9 \ud83d\ude00 \\u0000" }))).toBe(true);
    expect(isStorableJson(JSON.stringify({ a: "plain" }))).toBe(true);
  });

  it("gives the pattern's answer for any text", () => {
    const piece = fc.constantFrom("\\", "u", "U", "0", "d", "D", "8", "f", "b", "a", "x", '"', "\u0000", "\ud800");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }).map((p) => p.join("")), (text) => {
        expect(isStorableJson(text)).toBe(!UNSTORABLE_JSON.test(text));
      }),
      { numRuns: 20_000 },
    );
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 64 }), (text) => {
      const json = JSON.stringify({ text });
      expect(isStorableJson(json)).toBe(!UNSTORABLE_JSON.test(json));
    }), { numRuns: 5_000 });
  });
});
