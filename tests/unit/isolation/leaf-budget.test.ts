import { describe, expect, it } from "vitest";
import { LeafBudget } from "@/proxy-worker/isolation/leaf-budget";

describe("a sandbox's budget of new leaf certificates", () => {
  it("allows a minute's worth at once, then refills at its rate, per sandbox", () => {
    let now = 0;
    const budget = new LeafBudget(6, () => now);
    expect(Array.from({ length: 8 }, () => budget.take("a"))).toEqual([true, true, true, true, true, true, false, false]);
    // Another sandbox has its own.
    expect(budget.take("b")).toBe(true);
    // One a minute / 6 = every 10 s.
    now += 9_000;
    expect(budget.take("a")).toBe(false);
    now += 1_500;
    expect(budget.take("a")).toBe(true);
    expect(budget.take("a")).toBe(false);
    // Idle for long, it holds no more than a minute's worth.
    now += 3_600_000;
    expect(Array.from({ length: 7 }, () => budget.take("a")).filter(Boolean)).toHaveLength(6);
  });
});
