import { afterEach, describe, expect, it } from "vitest";
import { AuditBudget } from "@/lib/audit/budget";

describe("the audit budget (sign-in failures, API key locks)", () => {
  let budget: AuditBudget | null = null;
  afterEach(() => budget?.stop());

  it("lets perMinute events through a minute, counts the rest for the summary, and opens again a minute later", () => {
    budget = new AuditBudget(2, async () => undefined, "a test summary");
    const t0 = 1_000_000;
    expect([budget.take(t0), budget.take(t0 + 1), budget.take(t0 + 2), budget.take(t0 + 59_999)]).toEqual([true, true, false, false]);
    expect(budget.takeFolded()).toBe(2);
    expect(budget.takeFolded()).toBe(0);
    expect(budget.take(t0 + 60_000)).toBe(true);
  });
});
