import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { canonicalEventText, eventHash, GENESIS_HASH, jsonbText, type ChainedEventFields } from "@/lib/audit/chain";

const base: ChainedEventFields = {
  seq: 42n,
  prevHash: "ab".repeat(32),
  at: new Date("2026-11-25T12:34:56.789Z"),
  type: "proxy.decision",
  actorType: "agent",
  actorId: null,
  agentId: "0f8fad5b-d9cb-469f-a165-70867728950e",
  taskId: null,
  outcome: "deny",
  effect: "",
  reason: "a|b",
  ruleId: "é",
  dataText: '{"a": 1}',
};

describe("the canonical event text (v1)", () => {
  it("is the documented concatenation, with length-prefixed fields and '-' for NULL", () => {
    expect(canonicalEventText(base)).toBe(
      `bulkhead-audit-v1|42|${"ab".repeat(32)}|2026-11-25T12:34:56.789Z|14:proxy.decision|5:agent|-|` +
        `36:0f8fad5b-d9cb-469f-a165-70867728950e|-|4:deny|0:|3:a|b|2:é|8:{"a": 1}`,
    );
  });

  it("hashes the UTF-8 bytes with SHA-256 (pinned vector, also checked against PostgreSQL)", () => {
    const text = canonicalEventText(base);
    expect(eventHash(base)).toBe(createHash("sha256").update(Buffer.from(text, "utf8")).digest("hex"));
    expect(eventHash(base)).toBe("f42dcd68045f8c3020f51b48422a0fc4af196a62855a583361da4425eda0f5e8");
  });

  it("keeps NULL, empty and look-alike values apart", () => {
    const variants: Array<Partial<ChainedEventFields>> = [
      { actorId: null },
      { actorId: "" },
      { actorId: "-" },
      { actorId: "0:" },
      { reason: "a", ruleId: "b" },
      { reason: "a|1:b", ruleId: null },
    ];
    const hashes = variants.map((v) => eventHash({ ...base, reason: null, ruleId: null, ...v }));
    expect(new Set(hashes).size).toBe(variants.length);
  });

  it("counts field lengths in UTF-8 bytes, including astral characters", () => {
    expect(canonicalEventText({ ...base, reason: "🔑" })).toContain("|4:🔑|");
    expect(canonicalEventText({ ...base, reason: "日本" })).toContain("|6:日本|");
  });

  it("covers every field and the position in the chain", () => {
    const h = eventHash(base);
    const changes: Array<Partial<ChainedEventFields>> = [
      { seq: 43n }, { prevHash: GENESIS_HASH }, { at: new Date("2026-11-25T12:34:56.790Z") }, { type: "x" }, { actorType: "user" },
      { actorId: "u" }, { agentId: null }, { taskId: base.agentId }, { outcome: "allow" }, { effect: null }, { reason: "a|c" },
      { ruleId: "e" }, { dataText: '{"a": 2}' },
    ];
    for (const c of changes) expect(eventHash({ ...base, ...c }), Object.keys(c)[0]).not.toBe(h);
  });
});

describe("jsonbText: PostgreSQL's text form of a jsonb value", () => {
  it.each([
    [{}, "{}"],
    [[], "[]"],
    [null, "null"],
    [{ b: 1, a: [true, false, null] }, '{"a": [true, false, null], "b": 1}'],
    // shorter keys first, then bytewise
    [{ bb: 1, a: 2, c: 3, aaa: 4 }, '{"a": 2, "c": 3, "bb": 1, "aaa": 4}'],
    [{ "é": 1, z: 2 }, '{"z": 2, "é": 1}'],
    [{ n: { m: { l: [1, { k: "v" }] } } }, '{"n": {"m": {"l": [1, {"k": "v"}]}}}'],
    ["quote\" back\\ nl\n tab\t cr\r bs\b ff\f ctl\u0001 del\u007f", '"quote\\" back\\\\ nl\\n tab\\t cr\\r bs\\b ff\\f ctl\\u0001 del\u007f"'],
    ["/ and é and 🔑", '"/ and é and 🔑"'],
    [1.5e-7, "0.00000015"],
    [1e21, "1000000000000000000000"],
    [-1.25e25, "-12500000000000000000000000"],
    [123.456, "123.456"],
    [-0, "0"],
    [0.1, "0.1"],
  ])("%j -> %s", (value, text) => {
    expect(jsonbText(value)).toBe(text);
  });

  it("follows JSON.stringify for what JSON cannot hold", () => {
    expect(jsonbText({ a: undefined, b: new Date("2026-01-01T00:00:00.000Z"), c: [undefined] })).toBe('{"b": "2026-01-01T00:00:00.000Z", "c": [null]}');
  });
});
