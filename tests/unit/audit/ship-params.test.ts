import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { prepareRows, textArrayLiteral } from "@/proxy-worker/audit/store";

// The driver's own conversion of a JavaScript array to a parameter (what it sent before the
// shipper made its parameters itself).
const { prepareValue } = createRequire(import.meta.url)("pg/lib/utils") as { prepareValue: (v: unknown) => unknown };

describe("the shipper's batch parameters", () => {
  it("are the array literals the driver would write, for any text and nulls", () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.string({ unit: "binary" }), { nil: null }), { maxLength: 20 }), (values) => {
        expect(textArrayLiteral(values)).toBe(prepareValue(values));
      }),
      { numRuns: 2_000 },
    );
    expect(textArrayLiteral([])).toBe("{}");
    expect(textArrayLiteral(['a"b', "c\\d", null, "NULL", "", "{x,y}"])).toBe(prepareValue(['a"b', "c\\d", null, "NULL", "", "{x,y}"]));
  });

  it("hold the rows' eleven columns in order, one element per row", () => {
    const rows = [
      prepareEvent({ type: "proxy.decision", actorType: "agent", actorId: "a\"1", agentId: "0f8fad5b-d9cb-469f-a165-70867728950e", outcome: "allow", reason: "r\\1", data: { k: "é 😀" } }, new Date("2026-12-04T00:00:00.001Z")),
      prepareEvent({ type: "admin.change", actorType: "user", data: {} }, new Date("2026-12-04T00:00:00.002Z")),
    ];
    const { rows: n, values } = prepareRows(rows);
    expect(n).toBe(2);
    expect(values).toEqual([
      prepareValue(rows.map((r) => r.at)),
      prepareValue(rows.map((r) => r.type)),
      prepareValue(rows.map((r) => r.actorType)),
      prepareValue(rows.map((r) => r.actorId)),
      prepareValue(rows.map((r) => r.agentId)),
      prepareValue(rows.map((r) => r.taskId)),
      prepareValue(rows.map((r) => r.outcome)),
      prepareValue(rows.map((r) => r.effect)),
      prepareValue(rows.map((r) => r.reason)),
      prepareValue(rows.map((r) => r.ruleId)),
      prepareValue(rows.map((r) => r.data)),
    ]);
  });
});
