import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decide } from "@/lib/policy/decide";
import { normalizePolicy, policySchema } from "@/lib/policy/schema";
import { compilePolicy } from "@/lib/policy/compiled";
import { compileGlob, compileGlobs, globMatch, type MatchStats } from "@/lib/semantics/glob";

/** The obvious (exponential) definition, for comparison on small inputs only. */
function reference(pattern: string, value: string): boolean {
  if (pattern === "") return value === "";
  const [p, ...rest] = pattern;
  const tail = rest.join("");
  if (p === "*") {
    for (let i = 0; i <= value.length; i++) if (reference(tail, value.slice(i))) return true;
    return false;
  }
  return value.length > 0 && (p === "?" || p === value[0]) && reference(tail, value.slice(1));
}

describe("glob matching", () => {
  const cases: Array<[string, string, boolean]> = [
    ["vol_*", "vol_123", true],
    ["vol_*", "vol", false],
    ["*", "", true],
    ["", "", true],
    ["a*b", "ab", true],
    ["a*b", "a/x/b", true],
    ["a*b", "a/x/bc", false],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["*a*a*", "aa", true],
    ["*a*a*", "a", false],
    ["env_*_prod", "env__prod", true],
    ["a**b", "ab", true],
    ["?*?", "x", false],
    ["?*?", "xy", true],
    ["*ab?d*", "xxabcabxd", true],
    ["x*aab", "xaaab", true],
    ["x*aab", "xaab", true],
    ["x*aab*aab", "xaab", false],
  ];
  for (const [pattern, value, expected] of cases) {
    it(`${JSON.stringify(pattern)} vs ${JSON.stringify(value)} → ${expected}`, () => {
      expect(globMatch(pattern, value)).toBe(expected);
      expect(reference(pattern, value)).toBe(expected);
    });
  }

  it("agrees with the definition on random patterns and values", () => {
    const alphabet = fc.constantFrom("a", "b", "_", "*", "?");
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 8 }), fc.array(fc.constantFrom("a", "b", "_", "?", "*"), { maxLength: 12 }), (p, v) => {
        const pattern = p.join("");
        const value = v.join("");
        expect(globMatch(pattern, value)).toBe(reference(pattern, value));
      }),
      { numRuns: 3000 },
    );
  });

  it("segments longer than one machine word still match exactly", () => {
    const long = "a".repeat(40) + "?" + "b".repeat(40);
    expect(globMatch(`*${long}*`, `zz${"a".repeat(40)}X${"b".repeat(40)}zz`)).toBe(true);
    expect(globMatch(`*${long}*`, `zz${"a".repeat(40)}${"b".repeat(40)}zz`)).toBe(false);
    expect(globMatch(`x*${long}`, `x${"a".repeat(41)}c${"b".repeat(40)}`)).toBe(true);
  });

  it("case-insensitive lists fold both sides", () => {
    const m = compileGlobs(["Vol_*", "acme/APP"], { caseInsensitive: true });
    expect(m("VOL_1")).toBe(true);
    expect(m("acme/app")).toBe(true);
    expect(m("acme/other")).toBe(false);
  });
});

describe("glob matching over agent-controlled values is linear", () => {
  // What an agent controls: a long resource, operation or tool name built to make a
  // backtracking matcher try every way of splitting it between the stars.
  const adversarial: Array<[string, string, boolean]> = [
    ["vol_*_*_*_prod", `vol_${"_".repeat(2048)}x`, false],
    ["vol_*_*_*_prod", `vol_${"_".repeat(2048)}prod`, true],
    ["vol_*_*_*_*_*_*_prod", `vol_${"_".repeat(4096)}prox`, false],
    ["*a*a*a*a*a*a*a*b", "a".repeat(8192), false],
    ["*?*?*?*?*?*?*?*!", "?".repeat(8192), false],
    [`*${"ab".repeat(20)}c*`, "ab".repeat(5000), false],
    [`*${"a".repeat(70)}b*`, "a".repeat(10000), false],
    [`*${"a".repeat(70)}b*`, `${"a".repeat(10000)}b`, true],
  ];
  for (const [pattern, value, expected] of adversarial) {
    it(`${pattern.slice(0, 30)} against ${value.length} characters: work bounded by (value × segments)`, () => {
      const stats: MatchStats = { steps: 0 };
      const matched = compileGlob(pattern)(value, stats);
      expect(matched).toBe(expected);
      const segments = pattern.split("*").filter((s) => s !== "");
      const words = segments.reduce((sum, s) => sum + Math.ceil(s.length / 32), 0);
      // A backtracking matcher needs on the order of value^(stars-1) steps here.
      expect(stats.steps).toBeLessThanOrEqual((value.length + pattern.length) * (words + 2));
    });
  }

  it("a policy whose deny rule is `vol_*_*_*_prod` decides on a 2 KB resource at once", () => {
    const policy = compilePolicy(
      normalizePolicy(
        policySchema.parse({
          rules: [
            { id: "no-prod", service: "railway", resources: ["vol_*_*_*_prod", "vol_*_*_*_*_*_backup"], decision: "deny" },
            { id: "read", service: "railway", effects: ["read"] },
          ],
        }),
      ),
    );
    const resource = `vol_${"_".repeat(2048)}x`;
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      const d = decide(policy, [{ service: "railway", environment: "staging", resource, operation: "volume", effect: "read" }], 0);
      expect(d.decision).toBe("allow");
    }
    // Twenty decisions; a backtracking matcher needs seconds for one.
    expect(performance.now() - started).toBeLessThan(500);
  });
});
