import { describe, expect, it } from "vitest";
import { parsePolicy } from "@/lib/policy/parse";
import type { Policy } from "@/lib/policy/schema";
import { policyWidenings } from "@/lib/policy/widening";

function policy(yaml: string): Policy {
  const parsed = parsePolicy(yaml);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.policy;
}

const BASE = `
rules:
  - id: reads
    service: railway
    environments: [staging]
    effects: [read]
  - id: no-prod
    service: railway
    environments: [production]
    decision: deny
`;

describe("policyWidenings: what a task can newly do without a human", () => {
  const cases: Array<{ name: string; before: string | null; after: string; widens: RegExp[] }> = [
    { name: "the same policy", before: BASE, after: BASE, widens: [] },
    { name: "a new read rule", before: BASE, after: `${BASE}  - service: github\n    effects: [read, write]\n`, widens: [] },
    { name: "narrowing environments", before: BASE, after: BASE.replace("[staging]", "[staging-eu]").replace("environments: [staging-eu]", "environments: [staging-eu]"), widens: [] },
    { name: "a hold rule for irreversible effects", before: BASE, after: `${BASE}  - service: railway\n    effects: [irreversible]\n    decision: hold\n`, widens: [] },
    { name: "waive_approval", before: BASE, after: `${BASE}  - id: yolo\n    service: railway\n    effects: [irreversible]\n    waive_approval: true\n`, widens: [/rule yolo waives approval for irreversible effects/] },
    { name: 'service: "*"', before: BASE, after: `${BASE}  - id: everything\n    service: "*"\n    effects: [read]\n`, widens: [/rule everything applies to every service/] },
    { name: "new irreversible effects", before: BASE, after: BASE.replace("effects: [read]", "effects: [read, irreversible]"), widens: [/rule reads allows irreversible effects/] },
    { name: "destructive effects without approval", before: BASE, after: BASE.replace("effects: [read]", "effects: [read, destructive]"), widens: [/rule reads allows destructive effects without approval/] },
    { name: "a dangerous rule moved to more resources", before: `rules:\n  - id: d\n    service: railway\n    resources: [vol_1]\n    effects: [destructive]\n`, after: `rules:\n  - id: d\n    service: railway\n    resources: [vol_1, vol_prod]\n    effects: [destructive]\n`, widens: [/rule d allows destructive/] },
    { name: "a dangerous rule losing its expiry", before: `rules:\n  - id: d\n    service: railway\n    effects: [destructive]\n    expires_at: "2030-01-01T00:00:00Z"\n`, after: `rules:\n  - id: d\n    service: railway\n    effects: [destructive]\n`, widens: [/rule d/] },
    { name: "a dangerous rule renamed but unchanged", before: `rules:\n  - id: a\n    service: railway\n    effects: [destructive]\n`, after: `rules:\n  - id: b\n    service: railway\n    effects: [destructive]\n`, widens: [] },
    { name: "a dangerous rule narrowed", before: `rules:\n  - id: d\n    service: railway\n    effects: [destructive, write]\n`, after: `rules:\n  - id: d\n    service: railway\n    resources: [vol_1]\n    effects: [destructive]\n`, widens: [] },
    { name: "a hold rule becoming allow", before: `rules:\n  - id: h\n    service: railway\n    effects: [destructive]\n    decision: hold\n`, after: `rules:\n  - id: h\n    service: railway\n    effects: [destructive]\n`, widens: [/rule h allows destructive/] },
    { name: "removing a deny rule", before: BASE, after: BASE.split("  - id: no-prod")[0]!, widens: [/deny rule no-prod was removed or narrowed/] },
    { name: "narrowing a deny rule", before: BASE, after: BASE.replace("environments: [production]\n    decision: deny", "environments: [production]\n    operations: [volumeDelete]\n    decision: deny"), widens: [/deny rule no-prod/] },
    { name: "widening a deny rule", before: BASE, after: BASE.replace("environments: [production]\n    decision: deny", "decision: deny"), widens: [] },
    { name: "report mode", before: BASE, after: `mode: report\n${BASE}`, widens: [/report mode lets every request through/] },
    { name: "unlisted: hold (still a human)", before: BASE, after: `unlisted: hold\n${BASE}`, widens: [] },
    { name: "a new task with reads only", before: null, after: BASE, widens: [] },
    { name: "a new task with an allow-all policy", before: null, after: `rules:\n  - id: all\n    service: "*"\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n`, widens: [/rule all waives approval.*every service.*destructive/] },
  ];

  it.each(cases)("$name", ({ before, after, widens }) => {
    const reasons = policyWidenings(before === null ? null : policy(before), policy(after));
    expect(reasons).toHaveLength(widens.length);
    widens.forEach((pattern, i) => expect(reasons[i]).toMatch(pattern));
  });
});
