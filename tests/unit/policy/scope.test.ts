/**
 * A policy next to its task's scope: the default scope derived from a policy (exactly what it
 * reaches, never more), the rules that lie outside a scope, and the refusal the proxy gives
 * before any policy is consulted.
 */
import { describe, expect, it } from "vitest";
import { NO_SCOPE, parseScope, scopeAllows, type TaskScope } from "@/lib/identity/scope";
import { decide } from "@/lib/policy/decide";
import { outsideScope, policyOutsideScope, scopeFromPolicy } from "@/lib/policy/scope";
import { compilePolicy } from "@/lib/policy/compiled";
import { EFFECTS } from "@/lib/semantics/types";
import { action, NOW, policy } from "./support";

function scope(text: string): TaskScope {
  const parsed = parseScope(text);
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  return parsed.scope;
}

function derived(yaml: string) {
  const result = scopeFromPolicy(policy(yaml), NOW);
  if (!result.ok) throw new Error(result.error);
  return result;
}

describe("the default scope: exactly what the policy reaches", () => {
  it.each([
    ["unlisted: deny\nrules: []\n", ""],
    ["rules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n", "railway:staging:read"],
    ["rules:\n  - service: railway\n    environments: [Staging, dev*]\n    effects: [read, write]\n", "railway:dev*:write railway:staging:write"],
    ["rules:\n  - service: github\n    effects: [read]\n  - service: github\n    decision: hold\n    effects: [irreversible]\n", "github:*:irreversible"],
    ["rules:\n  - service: railway\n    decision: deny\n", ""],
    ["rules:\n  - service: '*'\n    environments: [staging]\n    effects: [write]\n", "*:staging:write"],
    ["rules:\n  - service: railway\n    effects: [read]\n    expires_at: '2020-01-01T00:00:00Z'\n", ""],
  ])("%j reaches %j", (yaml, text) => {
    expect(derived(yaml).scope.text).toBe(text);
  });

  it("a policy that holds unlisted actions, or runs in report mode, reaches everything, and says why", () => {
    expect(derived("unlisted: hold\nrules: []\n")).toMatchObject({ basis: "unlisted_hold", scope: { text: "*:*:irreversible" } });
    expect(derived("mode: report\nrules: []\n")).toMatchObject({ basis: "report_mode", scope: { text: "*:*:irreversible" } });
  });

  it("changes none of the policy's decisions at creation (property over actions)", () => {
    const yaml = "rules:\n  - service: railway\n    environments: [staging]\n    resources: [vol_*]\n    effects: [read, write]\n  - service: github\n    effects: [read]\n  - service: railway\n    decision: deny\n    operations: [volumeDelete]\n";
    const p = policy(yaml);
    const s = derived(yaml).scope;
    const compiled = compilePolicy(p);
    for (const service of ["railway", "github", "unknown"]) {
      for (const env of ["staging", "production"]) {
        for (const effect of EFFECTS) {
          for (const resource of ["vol_1", "acme/app", "-"]) {
            const a = action(service, env, "op", effect, resource);
            if (decide(compiled, [a], NOW).decision !== "deny") expect(scopeAllows(s, a), `${service}/${env}/${effect}/${resource}`).toBe(true);
          }
        }
      }
    }
  });

  it("leaves out what a scope cannot spell (it matches no action anyway) and says so", () => {
    const result = derived("rules:\n  - service: Railway\n    effects: [read]\n  - service: github\n    environments: ['prod env']\n    effects: [read]\n");
    expect(result.scope.text).toBe("");
    expect(result.notes).toHaveLength(2);
  });
});

describe("rules outside the scope", () => {
  const rules = "rules:\n  - id: stg-read\n    service: railway\n    environments: [staging]\n    effects: [read]\n  - id: prod-delete\n    service: railway\n    environments: [production]\n    effects: [irreversible]\n    waive_approval: true\n  - id: stg-write\n    service: railway\n    environments: [staging]\n    effects: [read, write]\n  - id: no-gh\n    service: github\n    decision: deny\n";

  it("names each rule that reaches further, and what of it does; deny rules only narrow", () => {
    const warnings = policyOutsideScope(policy(rules), scope("railway:staging:read"), NOW);
    expect(warnings.map((w) => w.ruleId)).toEqual(["prod-delete", "stg-write"]);
    expect(warnings[0]!.message).toMatch(/prod-delete allows irreversible on railway\/production, outside the task's scope \(railway:staging:read\).*token_scope/);
    expect(warnings[1]!.message).toMatch(/stg-write allows write on railway\/staging/);
    expect(policyOutsideScope(policy(rules), scope("railway:*:irreversible"), NOW)).toEqual([]);
  });

  it("a rule for every service or environment lies outside anything narrower", () => {
    const p = policy("rules:\n  - id: all\n    service: '*'\n    effects: [read]\n");
    expect(policyOutsideScope(p, scope("railway:*:read"), NOW).map((w) => w.ruleId)).toEqual(["all"]);
    expect(policyOutsideScope(p, scope("*:staging:read"), NOW).map((w) => w.ruleId)).toEqual(["all"]);
    expect(policyOutsideScope(p, scope("*:*:read"), NOW)).toEqual([]);
  });

  it("says that unlisted: hold and report mode cannot reach past the scope", () => {
    const messages = policyOutsideScope(policy("mode: report\nunlisted: hold\nrules: []\n"), scope("railway:staging:read"), NOW).map((w) => w.message);
    expect(messages.join("\n")).toMatch(/unlisted: hold holds only actions inside the scope/);
    expect(messages.join("\n")).toMatch(/report mode blocks nothing the scope allows/);
  });
});

describe("the refusal before the policy", () => {
  it("names the first action outside, the scope and the code, with the request's effect", () => {
    const s = scope("railway:staging:read");
    const actions = [action("railway", "staging", "environment", "read"), action("railway", "production", "volumeDelete", "irreversible", "vol_prod", { resourceKind: "volume" })];
    expect(outsideScope(s, actions.slice(0, 1))).toBeNull();
    expect(outsideScope(s, actions)).toEqual({
      reason: "token_scope: irreversible `volumeDelete` on production volume vol_prod lies outside the task's scope (railway:staging:read)",
      effect: "irreversible",
    });
    expect(outsideScope(NO_SCOPE, actions)?.reason).toMatch(/\(none\) \(and 1 more action\)$/);
  });
});

describe("a rule wider than the scope, partly inside it", () => {
  it("says the rule applies inside the scope and only the rest is refused (the README's read-only example)", () => {
    const [warning] = policyOutsideScope(policy("unlisted: deny\nrules:\n  - id: railway-read\n    service: railway\n    effects: [read]\n"), scope("railway:staging:read"));
    expect(warning?.message).toBe("rule railway-read allows read on railway/* (every environment), more than the task's scope (railway:staging:read): it applies inside the scope, and the proxy refuses the rest (token_scope) whatever the rule says");
  });

  it("a glob no part of which the scope allows is still outside it (the control)", () => {
    const [warning] = policyOutsideScope(policy("unlisted: deny\nrules:\n  - id: wide\n    service: railway\n    effects: [write]\n"), scope("railway:staging:read"));
    expect(warning?.message).toMatch(/^rule wide allows write on railway\/\* \(every environment\), outside the task's scope/);
  });
});
