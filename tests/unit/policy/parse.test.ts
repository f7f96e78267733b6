import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { policyJsonSchema } from "@/lib/policy/json-schema";
import { parsePolicy, type PolicyError } from "@/lib/policy/parse";

function errors(yaml: string): PolicyError[] {
  const result = parsePolicy(yaml);
  if (result.ok) throw new Error("expected errors");
  return result.errors;
}

describe("parsePolicy: valid input", () => {
  it("applies defaults and names rules by position", () => {
    const result = parsePolicy(`rules:
  - service: railway
    effects: [read]
  - id: named
    service: github
    effects: [read, write]
`);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.policy.mode).toBe("enforce");
    expect(result.policy.unlisted).toBe("deny");
    expect(result.policy.rules.map((r) => [r.id, r.decision, r.waive_approval])).toEqual([
      ["rule-1", "allow", false],
      ["named", "allow", false],
    ]);
  });
  it("the format from the docs parses", () => {
    const result = parsePolicy(`mode: report
unlisted: hold
rules:
  - id: railway-staging-read
    service: railway
    environments: [staging]
    resources: ["acme/app"]
    operations: ["volume*"]
    effects: [read]
    decision: allow
    waive_approval: false
`);
    expect(result.ok && [result.policy.mode, result.policy.unlisted]).toEqual(["report", "hold"]);
  });
  it("deny rules may omit effects", () => {
    expect(parsePolicy("rules:\n  - { service: github, resources: [acme/secrets], decision: deny }").ok).toBe(true);
  });
  it("a generated id does not collide with an explicit one", () => {
    const result = parsePolicy("rules:\n  - { id: rule-2, service: a, effects: [read] }\n  - { service: b, effects: [read] }");
    expect(result.ok && result.policy.rules.map((r) => r.id)).toEqual(["rule-2", "rule-2-auto"]);
  });
});

describe("parsePolicy: errors point at the offending rule", () => {
  const cases: Array<{ name: string; yaml: string; error: PolicyError }> = [
    {
      name: "unknown effect",
      yaml: "rules:\n  - id: a\n    service: railway\n    effects: [read]\n  - id: b\n    service: railway\n    effects: [read, delete]\n",
      error: { path: "rules[1].effects[1]", line: 7, message: 'in rule "b": "delete" is not allowed here: expected one of read, write, destructive, irreversible' },
    },
    {
      name: "misspelt key with a suggestion",
      yaml: "rules:\n  - service: railway\n    effect: [read]\n",
      error: { path: "rules[0].effect", line: 3, message: 'in rule 1: unknown key "effect" (did you mean "effects"?)' },
    },
    {
      name: "missing service",
      yaml: "rules:\n  - id: x\n    effects: [read]\n",
      error: { path: "rules[0].service", line: 2, message: 'in rule "x": is required' },
    },
    {
      name: "allow rule without effects",
      yaml: "rules:\n  - id: x\n    service: railway\n",
      error: { path: "rules[0].effects", line: 2, message: 'in rule "x": effects is required for allow rules: list the effects you mean to allow' },
    },
    {
      name: "bad mode",
      yaml: "mode: block\nrules: []\n",
      error: { path: "mode", line: 1, message: '"block" is not allowed here: expected one of enforce, report' },
    },
    {
      name: "unknown top-level key",
      yaml: "modes: enforce\n",
      error: { path: "modes", line: 1, message: 'unknown key "modes" (did you mean "mode"?)' },
    },
    {
      name: "duplicate rule ids",
      yaml: "rules:\n  - { id: a, service: s, effects: [read] }\n  - { id: a, service: t, effects: [read] }\n",
      error: { path: "rules[1].id", line: 3, message: 'in rule "a": duplicate rule id "a" (also rules[0])' },
    },
    {
      name: "waive_approval must be a boolean",
      yaml: "rules:\n  - service: s\n    effects: [irreversible]\n    waive_approval: yes please\n",
      error: { path: "rules[0].waive_approval", line: 4, message: "in rule 1: must be true or false, not text" },
    },
    {
      name: "empty pattern list",
      yaml: "rules:\n  - service: s\n    effects: [read]\n    environments: []\n",
      error: { path: "rules[0].environments", line: 4, message: "in rule 1: list at least one environment, or leave the key out to mean any" },
    },
    {
      name: "invalid expiry",
      yaml: "rules:\n  - service: s\n    effects: [read]\n    expires_at: tomorrow\n",
      error: { path: "rules[0].expires_at", line: 4, message: "in rule 1: must be a date and time with its zone, such as 2026-12-31T18:00:00Z" },
    },
    {
      name: "YAML syntax error",
      yaml: "rules:\n  - service: [unclosed\n",
      error: { path: "", line: 3, message: "" },
    },
    {
      name: "duplicate YAML keys",
      yaml: "mode: enforce\nmode: report\n",
      error: { path: "", line: 2, message: "" },
    },
    {
      name: "empty document",
      yaml: "",
      error: { path: "", line: 1, message: "policy is empty: expected a mapping with mode, unlisted and rules" },
    },
    {
      name: "rules is not a list",
      yaml: "rules: allow-everything\n",
      error: { path: "rules", line: 1, message: "must be a list, not text" },
    },
    {
      name: "a service that is a number",
      yaml: "rules:\n  - service: 5\n    effects: [read]\n",
      error: { path: "rules[0].service", line: 2, message: "in rule 1: must be text, not the number 5" },
    },
    {
      name: "rules given as binary data",
      yaml: "rules: !!binary aGVsbG8=\n",
      error: { path: "rules", line: 1, message: "must be a list, not binary data" },
    },
    {
      name: "two YAML documents",
      yaml: "---\nrules: []\n---\nrules: []\n",
      error: { path: "", line: 3, message: "a second YAML document starts here (after a `---` line); the file must hold exactly one" },
    },
    {
      name: "a YAML merge key",
      yaml: "base: &b\n  service: railway\nrules:\n  - <<: *b\n    id: x\n    effects: [read]\n",
      error: { path: "rules[0].<<", line: 4, message: 'in rule "x": merge keys (<<: *anchor) are not supported: write the rule\'s keys out (an alias of a whole value, key: *anchor, works)' },
    },
    {
      name: "an alias with no anchor",
      yaml: "rules:\n  - id: *nope\n",
      error: { path: "", message: "policy could not be read: the alias *nope names no anchor (&nope) set before it" },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const list = errors(c.yaml);
      const first = list.find((e) => e.path === c.error.path) ?? list[0];
      expect(first?.path).toBe(c.error.path);
      expect(first?.line).toBe(c.error.line);
      if (c.error.message) expect(first?.message).toBe(c.error.message);
      else expect(first?.message.length).toBeGreaterThan(0);
    });
  }
  it("reports every error, sorted by line", () => {
    const list = errors("mode: nope\nrules:\n  - service: s\n    effects: [bad]\n");
    expect(list.map((e) => e.path)).toEqual(["mode", "rules[0].effects[0]"]);
  });
  it("alias bombs are refused", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`)].join("\n");
    expect(parsePolicy(bomb).ok).toBe(false);
  });
});

describe("published JSON Schema", () => {
  it("lib/policy/policy.schema.json equals the schema generated from zod", () => {
    const committed: unknown = JSON.parse(readFileSync(new URL("../../../lib/policy/policy.schema.json", import.meta.url), "utf8"));
    expect(committed).toEqual(policyJsonSchema());
  });
});
