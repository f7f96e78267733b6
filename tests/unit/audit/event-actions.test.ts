import { describe, expect, it } from "vitest";
import { MAX_RECORDED_ACTIONS, unrecordableActions } from "@/proxy-worker/audit/compact";
import { MAX_EVENT_DATA_BYTES, prepareEvent } from "@/proxy-worker/audit/event";
import type { SemanticAction } from "@/lib/semantics/types";

const at = new Date("2026-12-05T05:00:00.000Z");

/** A SQL request padded with harmless reads around the statement that matters, as compactActions records them. */
function padded(n: number, at: number, extra: (i: number) => Record<string, unknown> = (i) => ({ detail: { statement: i, note: "x".repeat(60) } })) {
  return Array.from({ length: n }, (_, i) =>
    i === at
      ? { service: "orders-db", environment: "production", resource: "public.production_orders", operation: "DROP TABLE", effect: "irreversible", detail: { statement: i } }
      : { service: "orders-db", environment: "production", resource: `public.t_${i}`, operation: "SELECT", effect: "read", ...extra(i) },
  );
}

function stored(actions: unknown[]) {
  const row = prepareEvent({ type: "proxy.decision", actorType: "agent", outcome: "allow", effect: "irreversible", data: { method: "POST", url: "https://sql.internal.test/sql", service: "orders-db", actions } }, at);
  expect(Buffer.byteLength(row.data)).toBeLessThanOrEqual(MAX_EVENT_DATA_BYTES);
  return JSON.parse(row.data) as { actions: Array<Record<string, unknown>>; sanitised?: { changes: Array<{ path: string; what: string }>; actionsLeftOut?: number; actionCount?: number } };
}

describe("a decision event keeps every semantic action", () => {
  it("past 1,000 actions and past 256 KiB of details: every action, with its essentials, the details dropped and said so", () => {
    const d = stored(padded(1_997, 1_996));
    expect(d.actions).toHaveLength(1_997);
    expect(d.actions[1_996]).toEqual({ service: "orders-db", environment: "production", resource: "public.production_orders", operation: "DROP TABLE", effect: "irreversible" });
    expect(d.actions.every((a) => typeof a.resource === "string" && typeof a.operation === "string")).toBe(true);
    expect(d.sanitised?.changes).toContainEqual({ path: "data.actions[*].detail", what: "dropped" });
    expect(d.sanitised?.actionsLeftOut).toBeUndefined();
  });

  it("1,500 small actions are kept whole, details and all", () => {
    const d = stored(padded(1_500, 1_400, (i) => ({ detail: { statement: i } })));
    expect(d.actions).toHaveLength(1_500);
    expect(d.actions[1_400]).toMatchObject({ resource: "public.production_orders", detail: { statement: 1_400 } });
  });

  it("more than an event can hold (only a refusal: the pipeline refuses to forward it): says how many were left out", () => {
    const d = stored(padded(3_000, 10));
    expect(d.actions.length).toBeGreaterThan(10);
    expect(d.actions[10]).toMatchObject({ resource: "public.production_orders" });
    expect(d.sanitised?.actionsLeftOut).toBe(3_000 - d.actions.length);
    expect(d.sanitised?.actionCount).toBe(3_000);
    const huge = stored(Array.from({ length: 1_900 }, (_, i) => ({ service: "api", environment: "production", resource: `${"r".repeat(4_000)}${i}`, operation: "deleteVolume", effect: "irreversible" })));
    expect(huge.sanitised?.actionsLeftOut).toBe(1_900 - huge.actions.length);
    expect(huge.sanitised?.actionCount).toBe(1_900);
  });
});

describe("the pipeline's bound on what one event records", () => {
  const action = (resource: string): SemanticAction => ({ service: "api", environment: "production", resource, operation: "deleteVolume", effect: "irreversible" });
  it("takes up to 2,000 ordinary actions, and refuses more, or more bytes than an event holds", () => {
    expect(unrecordableActions(Array.from({ length: MAX_RECORDED_ACTIONS }, (_, i) => action(`vol_${i}`)))).toBeNull();
    expect(unrecordableActions(Array.from({ length: MAX_RECORDED_ACTIONS + 1 }, (_, i) => action(`vol_${i}`)))).toMatch(/2001 actions, more than the 2000/);
    expect(unrecordableActions(Array.from({ length: 100 }, (_, i) => action(`${"v".repeat(4_000)}${i}`)))).toMatch(/KiB of resources and operations/);
  });
  it("every set of actions it takes is recorded whole by prepareEvent", () => {
    let taken = 0;
    for (const [n, len] of [[2_000, 5], [2_000, 40], [1_000, 40], [150, 600], [25, 4_000], [10, 12_000]] as const) {
      const actions = Array.from({ length: n }, (_, i) => action(`${"é".repeat(len)}${i}`));
      if (unrecordableActions(actions) !== null) continue;
      taken++;
      const d = stored(actions.map((a) => ({ ...a, detail: { arguments: { id: a.resource, padding: "p".repeat(200) } } })));
      expect(d.actions, `${n} x ${len}`).toHaveLength(n);
      expect(d.actions.map((a) => a.resource)).toEqual(actions.map((a) => a.resource));
    }
    expect(taken).toBeGreaterThanOrEqual(4);
  });
});
