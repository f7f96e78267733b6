import { describe, expect, it } from "vitest";
import { csvRow } from "@/lib/audit/export/csv";
import type { AuditRow } from "@/lib/audit/search";
import { actionsLeftOutOf, actionsOf } from "@/lib/audit/view";

const action = (i: number) => ({ service: "orders-db", environment: "production", resource: `public.t_${i}`, operation: "SELECT", effect: "read" });

describe("what a person sees of a long event's actions", () => {
  it("every recorded action, not the first 100", () => {
    const actions = actionsOf({ actions: [...Array.from({ length: 150 }, (_, i) => action(i)), { ...action(0), resource: "public.ledger", operation: "DROP TABLE", effect: "irreversible" }] });
    expect(actions).toHaveLength(151);
    expect(actions[150]).toMatchObject({ resource: "public.ledger", operation: "DROP TABLE" });
  });

  it("how many the record lacks: the worker's note, or the sanitiser's marker in older events", () => {
    expect(actionsLeftOutOf({ actions: [action(1)] })).toBe(0);
    expect(actionsLeftOutOf({ actions: [action(1)], sanitised: { actionsLeftOut: 999, actionCount: 1000 } })).toBe(999);
    expect(actionsLeftOutOf({ actions: [action(1), "…[997 more items]"] })).toBe(997);
    expect(actionsLeftOutOf({ actions: [action(1), "…[x more items]"] })).toBe(0);
    expect(actionsLeftOutOf("scalar")).toBe(0);
  });

  it("the CSV's actions cell lists every action and says how many the record lacks", () => {
    const data = { method: "POST", url: "https://sql.test/sql", actions: [...Array.from({ length: 120 }, (_, i) => action(i)), "…[880 more items]"] };
    const row: AuditRow = {
      id: "1", seq: "1", at: new Date("2026-12-05T05:00:00Z"), recorded_at: null, type: "proxy.decision", actor_type: "agent", actor_id: null, agent_id: null, task_id: null, outcome: "deny", effect: "read",
      reason: "r", rule_id: null, data_text: JSON.stringify(data), prev_hash: null, hash: null, agent_name: null, task_purpose: null, actor_name: null,
    };
    const line = csvRow(row);
    expect(line).toContain("public.t_119");
    expect(line).toContain("880 more actions not in the record");
  });
});
