import { describe, expect, it } from "vitest";
import { readStoredActions } from "@/lib/approvals/policy-change";

/**
 * A policy save judges held requests by the actions the worker stored on their approvals. Only a
 * list it can read whole is judged; anything else is left to the worker's check at release, never
 * guessed into a decision.
 */
describe("reading an approval's stored actions", () => {
  const action = { service: "railway", environment: "staging", resource: "vol_1", operation: "volumeDelete", effect: "irreversible" };

  it("reads the actions a worker stored, detail and all", () => {
    expect(readStoredActions([action, { ...action, effect: "read", detail: { note: "x" } }])).toEqual([action, { ...action, effect: "read" }]);
  });

  it("refuses what is not a whole list of actions", () => {
    expect(readStoredActions([])).toBeNull();
    expect(readStoredActions(null)).toBeNull();
    expect(readStoredActions({ 0: action })).toBeNull();
    expect(readStoredActions([action, { ...action, effect: "obliterate" }])).toBeNull();
    expect(readStoredActions([{ ...action, resource: 7 }])).toBeNull();
    expect(readStoredActions([{ service: "railway" }])).toBeNull();
  });
});
