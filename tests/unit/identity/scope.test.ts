/**
 * The task scope: its grammar, one canonical spelling per scope, and what lies inside it. The
 * attacker's side: every effect and environment boundary, unknown services and environments,
 * case and spelling tricks, and claims that try to be wider than their task.
 */
import { describe, expect, it } from "vitest";
import { describeScope, firstOutsideScope, isUnrestricted, NO_SCOPE, parseCanonicalScope, parseScope, scopeAllows, scopeWithin, type TaskScope } from "@/lib/identity/scope";
import { EFFECTS, type Effect } from "@/lib/semantics/types";

function scope(text: string): TaskScope {
  const parsed = parseScope(text);
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  return parsed.scope;
}

const act = (service: string, environment: string, effect: Effect) => ({ service, environment, effect });

describe("grammar", () => {
  it.each([
    ["railway:staging:read", "railway:staging:read"],
    ["RAILWAY:Staging:READ", "railway:staging:read"],
    ["github:*:write, railway:staging:read", "github:*:write railway:staging:read"],
    ["railway:staging:read\nrailway:staging:write", "railway:staging:write"], // the higher effect covers the lower
    ["railway:staging:read *:staging:write", "*:staging:write"], // covered by a wider entry
    ["railway:staging:read railway:staging:read", "railway:staging:read"],
    ["railway:stag*:read railway:staging:read", "railway:stag*:read"],
    ["railway:staging:read railway:stag*:read", "railway:stag*:read"],
    ["none", ""],
    ["  NONE ", ""],
    ["*:*:irreversible", "*:*:irreversible"],
  ])("%j is %j", (input, canonical) => {
    expect(scope(input).text).toBe(canonical);
  });

  it.each([
    ["", /empty/],
    ["   ,, ", /empty/],
    ["*", /not service:environment:effect/],
    ["railway", /not service:environment:effect/],
    ["railway:staging", /not service:environment:effect/],
    ["railway:staging:read:extra", /not service:environment:effect/],
    ["railway:staging:everything", /effect must be one of read, write, destructive, irreversible/],
    ["railway:staging:*", /effect must be one of/],
    ["rail way:staging:read", /not service:environment:effect/],
    ["-railway:staging:read", /service must be/],
    ["railway:stag/ing:read", /environment must be/],
    ["railway::read", /environment must be/],
    ["none railway:staging:read", /"none" cannot be combined/],
    [Array.from({ length: 33 }, (_, i) => `s${i}:e:read`).join(" "), /at most 32 entries/],
    ["x".repeat(9000), /too long/],
  ])("%j is refused (%s)", (input, message) => {
    const parsed = parseScope(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.errors.join(" ")).toMatch(message);
  });

  it("takes a list as well as text, and names every bad entry", () => {
    expect(parseScope(["railway:staging:read", "github:*:write"])).toMatchObject({ ok: true, scope: { text: "github:*:write railway:staging:read" } });
    const parsed = parseScope("a:b:read c:d:explode e:f");
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.errors).toHaveLength(2);
  });

  it("accepts only the canonical spelling where a scope is stored or claimed", () => {
    expect(parseCanonicalScope("railway:staging:read")?.text).toBe("railway:staging:read");
    expect(parseCanonicalScope("")).toBe(NO_SCOPE);
    for (const other of ["RAILWAY:staging:read", "railway:staging:read,github:*:read", "railway:staging:read  ", "none", "railway:staging:read railway:staging:read", 42, null, ["railway:staging:read"]]) {
      expect(parseCanonicalScope(other), JSON.stringify(other)).toBeNull();
    }
  });

  it("has no shorthand for everything", () => {
    expect(parseScope("*").ok).toBe(false);
    expect(parseScope("*:*").ok).toBe(false);
    expect(isUnrestricted(scope("*:*:irreversible"))).toBe(true);
    expect(isUnrestricted(scope("*:*:destructive"))).toBe(false);
    expect(describeScope(NO_SCOPE)).toBe("none");
  });
});

describe("what lies inside a scope", () => {
  it("every effect boundary: an entry allows its effect and the ones below, nothing above", () => {
    for (const [ceilingIndex, ceiling] of EFFECTS.entries()) {
      const s = scope(`railway:staging:${ceiling}`);
      for (const [i, effect] of EFFECTS.entries()) {
        expect(scopeAllows(s, act("railway", "staging", effect)), `${effect} under ${ceiling}`).toBe(i <= ceilingIndex);
      }
    }
  });

  it("every environment boundary: only the named environment, never production or an unknown one", () => {
    const s = scope("railway:staging:irreversible");
    expect(scopeAllows(s, act("railway", "staging", "read"))).toBe(true);
    expect(scopeAllows(s, act("railway", "STAGING", "read"))).toBe(true); // inventories may spell it in capitals
    for (const env of ["production", "development", "staging2", "stagin", "staging ", "", "prod"]) {
      expect(scopeAllows(s, act("railway", env, "read")), env).toBe(false);
    }
    const globbed = scope("railway:staging-*:read");
    expect(scopeAllows(globbed, act("railway", "staging-eu", "read"))).toBe(true);
    expect(scopeAllows(globbed, act("railway", "staging", "read"))).toBe(false);
    expect(scopeAllows(globbed, act("railway", "production", "read"))).toBe(false);
  });

  it("services: only the named one; unknown hosts only where `unknown` or `*` is named", () => {
    const s = scope("railway:*:irreversible");
    expect(scopeAllows(s, act("railway", "production", "irreversible"))).toBe(true);
    for (const service of ["github", "unknown", "Railway", "railway ", "railwa", "railway-2"]) {
      expect(scopeAllows(s, act(service, "production", "read")), service).toBe(false);
    }
    expect(scopeAllows(scope("unknown:production:read"), act("unknown", "production", "read"))).toBe(true);
    expect(scopeAllows(scope("*:staging:read"), act("unknown", "production", "read"))).toBe(false);
    expect(scopeAllows(scope("*:*:read"), act("unknown", "production", "read"))).toBe(true);
  });

  it("none allows nothing", () => {
    for (const effect of EFFECTS) expect(scopeAllows(NO_SCOPE, act("railway", "staging", effect))).toBe(false);
  });

  it("a request is judged by every action: one outside is enough", () => {
    const s = scope("railway:staging:write");
    const actions = [act("railway", "staging", "read"), act("railway", "production", "read"), act("railway", "staging", "irreversible")];
    expect(firstOutsideScope(s, actions)).toEqual(actions[1]);
    expect(firstOutsideScope(s, actions.slice(0, 1))).toBeNull();
  });
});

describe("a claim within its task's scope", () => {
  it("equal, narrower or none is within; anything wider is not", () => {
    const task = scope("railway:staging:write github:*:read");
    expect(scopeWithin(task, task)).toBe(true);
    expect(scopeWithin(scope("railway:staging:read"), task)).toBe(true);
    expect(scopeWithin(scope("github:production:read"), task)).toBe(true);
    expect(scopeWithin(NO_SCOPE, task)).toBe(true);
    for (const wider of ["railway:staging:destructive", "railway:production:read", "railway:*:read", "*:staging:read", "github:*:write", "railway:stag*:read"]) {
      expect(scopeWithin(scope(wider), task), wider).toBe(false);
    }
    // A glob task entry covers a claim naming one environment it matches, never another glob.
    expect(scopeWithin(scope("railway:staging-eu:read"), scope("railway:staging-*:read"))).toBe(true);
    expect(scopeWithin(scope("railway:staging-e*:read"), scope("railway:staging-*:read"))).toBe(false);
  });
});
