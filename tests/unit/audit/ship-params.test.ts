import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { prepareRows, textArrayBinary } from "@/proxy-worker/audit/store";

/**
 * Reads a text[] in PostgreSQL's binary format, as array_recv does, refusing anything it would
 * refuse: for checking the shipper's encoder byte by byte.
 */
function readTextArray(b: Buffer): Array<string | null> {
  const ndim = b.readInt32BE(0);
  const flags = b.readInt32BE(4);
  expect(b.readInt32BE(8)).toBe(25); // text
  expect([0, 1]).toContain(flags);
  if (ndim === 0) {
    expect(b.length).toBe(12);
    return [];
  }
  expect(ndim).toBe(1);
  const n = b.readInt32BE(12);
  expect(b.readInt32BE(16)).toBe(1);
  const out: Array<string | null> = [];
  let at = 20;
  for (let i = 0; i < n; i++) {
    const len = b.readInt32BE(at);
    at += 4;
    if (len === -1) {
      expect(flags).toBe(1);
      out.push(null);
      continue;
    }
    out.push(b.toString("utf8", at, at + len));
    at += len;
  }
  expect(at).toBe(b.length);
  return out;
}

// What PostgreSQL receives for a JavaScript string: its UTF-8 bytes (a lone surrogate is U+FFFD).
const asUtf8 = (v: string | null) => (v === null ? null : Buffer.from(v, "utf8").toString("utf8"));

describe("the shipper's batch parameters", () => {
  it("are binary text arrays holding every element's bytes, for any text and nulls", () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.string({ unit: "binary" }), { nil: null }), { maxLength: 20 }), (values) => {
        const b = textArrayBinary(values);
        expect(readTextArray(b)).toEqual(values.map(asUtf8));
        expect(b.readInt32BE(4)).toBe(values.includes(null) ? 1 : 0);
      }),
      { numRuns: 2_000 },
    );
    expect(textArrayBinary([])).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25]));
    const awkward = ['a"b', "c\\d", null, "NULL", "", "{x,y}", "é 😀", "\n\t"];
    expect(readTextArray(textArrayBinary(awkward))).toEqual(awkward);
  });

  it("hold the rows' eleven columns in order, one element per row", () => {
    const rows = [
      prepareEvent({ type: "proxy.decision", actorType: "agent", actorId: "a\"1", agentId: "0f8fad5b-d9cb-469f-a165-70867728950e", outcome: "allow", reason: "r\\1", data: { k: "é 😀" } }, new Date("2026-12-04T00:00:00.001Z")),
      prepareEvent({ type: "admin.change", actorType: "user", data: {} }, new Date("2026-12-04T00:00:00.002Z")),
    ];
    const { rows: n, values } = prepareRows(rows);
    expect(n).toBe(2);
    expect(values.map(readTextArray)).toEqual([
      rows.map((r) => r.at),
      rows.map((r) => r.type),
      rows.map((r) => r.actorType),
      rows.map((r) => r.actorId),
      rows.map((r) => r.agentId),
      rows.map((r) => r.taskId),
      rows.map((r) => r.outcome),
      rows.map((r) => r.effect),
      rows.map((r) => r.reason),
      rows.map((r) => r.ruleId),
      rows.map((r) => r.data),
    ]);
  });
});
