import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { decide, type Verdict } from "@/lib/policy/decide";
import { parsePolicy } from "@/lib/policy/parse";
import { normalizePolicy, policySchema, type Policy } from "@/lib/policy/schema";
import { compilePolicy } from "@/lib/policy/compiled";
import { EFFECTS, type Effect, type SemanticAction } from "@/lib/semantics/types";
import { NOW } from "./support";

const SEVERITY: Record<Verdict, number> = { allow: 0, hold: 1, deny: 2 };
const SERVICES = ["railway", "github", "pg-http", "*"];
const ENVIRONMENTS = ["production", "staging", "dev"];
const OPERATIONS = ["volumeDelete", "volumeUpdate", "me", "repos.delete", "DELETE", "SELECT"];
const RESOURCES = ["vol_1", "vol_2", "acme/app", "orders", "-"];

const effect = fc.constantFrom<Effect>(...EFFECTS);
const maybeList = <T>(values: readonly T[], glob: readonly T[] = []) =>
  fc.option(fc.uniqueArray(fc.constantFrom(...values, ...glob), { minLength: 1, maxLength: 3 }), { nil: undefined });

const rule = fc.record({
  service: fc.constantFrom(...SERVICES),
  environments: maybeList(ENVIRONMENTS, ["stag*"]),
  resources: maybeList(RESOURCES, ["vol_*"]),
  operations: maybeList(OPERATIONS, ["volume*", "repos.*"]),
  effects: fc.uniqueArray(effect, { minLength: 1, maxLength: 4 }),
  decision: fc.constantFrom<"allow" | "hold" | "deny">("allow", "hold", "deny"),
  waive_approval: fc.boolean(),
});
const allowRule = rule.map((r) => ({ ...r, decision: "allow" as const }));

const policyObject = fc.record({
  mode: fc.constant("enforce"),
  unlisted: fc.constantFrom("deny", "hold"),
  rules: fc.array(rule, { maxLength: 8 }),
});

const action: fc.Arbitrary<SemanticAction> = fc.record({
  service: fc.constantFrom("railway", "github", "pg-http", "unknown"),
  environment: fc.constantFrom(...ENVIRONMENTS),
  resource: fc.constantFrom(...RESOURCES),
  operation: fc.constantFrom(...OPERATIONS),
  effect,
});

function build(raw: unknown): Policy {
  return normalizePolicy(policySchema.parse(raw));
}

describe("decide: monotonicity", () => {
  it("adding an allow rule never turns an allow into a deny (and never makes anything stricter)", () => {
    fc.assert(
      fc.property(policyObject, allowRule, fc.array(action, { minLength: 1, maxLength: 3 }), fc.nat(), (raw, extra, actions, at) => {
        const before = decide(compilePolicy(build(raw)), actions, NOW);
        const rules = [...raw.rules];
        rules.splice(at % (rules.length + 1), 0, extra);
        const after = decide(compilePolicy(build({ ...raw, rules })), actions, NOW);
        if (before.decision === "allow") expect(after.decision).toBe("allow");
        expect(SEVERITY[after.decision]).toBeLessThanOrEqual(SEVERITY[before.decision]);
      }),
      { numRuns: 500 },
    );
  });

  it("adding a deny rule never turns a deny into anything else", () => {
    fc.assert(
      fc.property(policyObject, rule.map((r) => ({ ...r, decision: "deny" as const })), action, (raw, extra, a) => {
        const before = decide(compilePolicy(build(raw)), [a], NOW);
        const after = decide(compilePolicy(build({ ...raw, rules: [...raw.rules, extra] })), [a], NOW);
        expect(SEVERITY[after.decision]).toBeGreaterThanOrEqual(SEVERITY[before.decision]);
      }),
      { numRuns: 300 },
    );
  });

  it("the request decision is the most restrictive of its actions", () => {
    fc.assert(
      fc.property(policyObject, fc.array(action, { minLength: 1, maxLength: 4 }), (raw, actions) => {
        const s = compilePolicy(build(raw));
        const whole = decide(s, actions, NOW);
        const worst = Math.max(...actions.map((a) => SEVERITY[decide(s, [a], NOW).decision]));
        expect(SEVERITY[whole.decision]).toBe(worst);
      }),
      { numRuns: 300 },
    );
  });

  it("report mode never blocks", () => {
    fc.assert(
      fc.property(policyObject, fc.array(action, { minLength: 1, maxLength: 3 }), (raw, actions) => {
        const enforce = decide(compilePolicy(build(raw)), actions, NOW);
        const report = decide(compilePolicy(build({ ...raw, mode: "report" })), actions, NOW);
        expect(report.decision).toBe("allow");
        expect(report.wouldBe).toBe(enforce.decision);
      }),
      { numRuns: 200 },
    );
  });
});

describe("never throws", () => {
  it("parsePolicy on arbitrary text", () => {
    const yamlish = fc.array(fc.constantFrom("rules:", "\n", "  - ", "service: ", "effects: [", "]", "read", "&a ", "*a", "{", "}", ":", "- ", "'", '"', "#", "mode: x"), { maxLength: 40 }).map((t) => t.join(""));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), yamlish), (text) => {
        const result = parsePolicy(text);
        expect(typeof result.ok).toBe("boolean");
        if (!result.ok) expect(result.errors.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });

  it("parsePolicy on arbitrary YAML values", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ rules: fc.array(fc.dictionary(fc.string(), fc.jsonValue()), { maxLength: 3 }) })), (value) => {
        const result = parsePolicy(stringify(value));
        expect(typeof result.ok).toBe("boolean");
      }),
      { numRuns: 300 },
    );
  });

  it("decide on arbitrary actions", () => {
    const anyAction = fc.record({ service: fc.string(), environment: fc.string(), resource: fc.string(), operation: fc.string(), effect });
    fc.assert(
      fc.property(policyObject, fc.array(anyAction, { maxLength: 3 }), (raw, actions) => {
        expect(["allow", "deny", "hold"]).toContain(decide(compilePolicy(build(raw)), actions, NOW).decision);
      }),
      { numRuns: 200 },
    );
  });
});
