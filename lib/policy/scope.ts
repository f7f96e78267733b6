/**
 * A policy next to its task's scope. The scope (layer 1, lib/identity/scope.ts) bounds the task;
 * the policy (layer 2) can only narrow it. Two questions, both pure:
 *  - the default scope of a task created without one: exactly what its policy reaches;
 *  - which rules of a policy reach outside a scope (they can never apply: the proxy refuses
 *    those actions with `token_scope` before the policy is consulted).
 */
import { describeScope, entryCovers, isUnrestricted, NO_SCOPE, scopeAllows, scopeFromEntries, type ScopeEntry, type TaskScope } from "@/lib/identity/scope";
import { describeAction } from "@/lib/policy/decide";
import { compileGlobs } from "@/lib/semantics/glob";
import type { Policy, PolicyRule } from "@/lib/policy/schema";
import { EFFECTS, effectRank, maxEffectOf, type Effect, type SemanticAction } from "@/lib/semantics/types";

export type DerivedScope =
  | { ok: true; scope: TaskScope; basis: "rules" | "unlisted_hold" | "report_mode"; notes: string[] }
  | { ok: false; error: string };

export interface ScopeWarning {
  /** The rule the warning is about; null for the policy as a whole. */
  ruleId: string | null;
  message: string;
}

const EVERYTHING: ScopeEntry = { service: "*", environment: "*", effect: "irreversible" };
const SERVICE = /^(?:\*|[a-z0-9][a-z0-9_-]{0,63})$/;
const ENVIRONMENT = /^[a-z0-9._*?-]{1,64}$/;

/**
 * Layer 1's verdict on a request: null when every action lies inside the scope, else the reason
 * (naming the first action outside, prefixed with the code `token_scope`) and the request's effect.
 */
export function outsideScope(scope: TaskScope, actions: readonly SemanticAction[]): { reason: string; effect: Effect } | null {
  // The common case (everything inside) allocates nothing.
  if (actions.every((action) => scopeAllows(scope, action))) return null;
  const outside = actions.filter((action) => !scopeAllows(scope, action));
  const first = outside[0] as SemanticAction;
  const more = outside.length > 1 ? ` (and ${outside.length - 1} more action${outside.length > 2 ? "s" : ""})` : "";
  return { reason: `token_scope: ${describeAction(first)} lies outside the task's scope (${describeScope(scope)})${more}`, effect: maxEffectOf(actions.map((a) => a.effect)) };
}

function live(policy: Policy, nowMs: number): PolicyRule[] {
  return policy.rules.filter((r) => !r.expires_at || Date.parse(r.expires_at) > nowMs);
}

/**
 * The scope a task gets when it is created without one: the smallest scope that changes none of
 * its policy's decisions at creation, so the policy can later narrow but never widen it. A policy
 * that holds unlisted actions for a human, or runs in report mode, reaches everything: its scope
 * says so (`*:*:irreversible`), and the task page warns about it.
 */
export function scopeFromPolicy(policy: Policy, now: Date | number): DerivedScope {
  const nowMs = typeof now === "number" ? now : now.getTime();
  if (policy.mode === "report") return { ok: true, scope: scopeFromEntries([EVERYTHING]) ?? NO_SCOPE, basis: "report_mode", notes: [] };
  if (policy.unlisted === "hold") return { ok: true, scope: scopeFromEntries([EVERYTHING]) ?? NO_SCOPE, basis: "unlisted_hold", notes: [] };
  const entries: ScopeEntry[] = [];
  const notes: string[] = [];
  for (const rule of live(policy, nowMs)) {
    if (rule.decision === "deny") continue;
    // Policy services match exactly; one the scope grammar cannot spell matches no action either.
    if (!SERVICE.test(rule.service)) {
      notes.push(`rule ${rule.id}: service "${rule.service}" names no service; left out of the scope`);
      continue;
    }
    const effect = maxEffectOf(rule.effects ?? EFFECTS);
    for (const pattern of rule.environments ?? ["*"]) {
      const environment = pattern.toLowerCase();
      if (!ENVIRONMENT.test(environment)) {
        notes.push(`rule ${rule.id}: environment "${pattern}" cannot be written in a scope; left out`);
        continue;
      }
      entries.push({ service: rule.service, environment, effect });
    }
  }
  const scope = scopeFromEntries(entries);
  if (!scope) return { ok: false, error: "The policy reaches more than a scope can list; give the task an explicit scope." };
  return { ok: true, scope, basis: "rules", notes };
}

function describe(service: string, environment: string, effects: readonly Effect[]): string {
  return `${effects.join("/")} on ${service}/${environment}`;
}

/**
 * Rules that reach outside the scope (and what of them does), plus policy-wide notes. An empty
 * list means the policy lies within the scope.
 */
export function policyOutsideScope(policy: Policy, scope: TaskScope, now: Date | number = Date.now()): ScopeWarning[] {
  const nowMs = typeof now === "number" ? now : now.getTime();
  const warnings: ScopeWarning[] = [];
  const shown = describeScope(scope);
  for (const rule of live(policy, nowMs)) {
    if (rule.decision === "deny") continue; // a deny rule only narrows
    const outside: string[] = [];
    // Whether some of what the rule reaches lies inside the scope (`environments` omitted or a
    // glob, the scope naming some of them): then the rule works there, and only the rest is refused.
    let partly = false;
    for (const pattern of rule.environments ?? ["*"]) {
      const environment = pattern.toLowerCase();
      const effects = (rule.effects ?? EFFECTS).filter((effect) => !scope.entries.some((e) => entryCovers(e, { service: rule.service, environment, effect })));
      if (effects.length === 0) continue;
      const glob = environment.includes("*") || environment.includes("?");
      const ruleEffects = rule.effects ?? EFFECTS;
      if (glob && scope.entries.some((e) => (e.service === "*" || e.service === rule.service) && (e.environment === "*" || globMatches(environment, e.environment)) && ruleEffects.some((effect) => effectRank(e.effect) >= effectRank(effect)))) partly = true;
      outside.push(describe(rule.service, pattern === "*" && !rule.environments ? "* (every environment)" : pattern, effects));
    }
    if (outside.length > 0) {
      const does = rule.decision === "hold" ? "holds" : "allows";
      warnings.push({
        ruleId: rule.id,
        message: partly
          ? `rule ${rule.id} ${does} ${outside.join("; ")}, more than the task's scope (${shown}): it applies inside the scope, and the proxy refuses the rest (token_scope) whatever the rule says`
          : `rule ${rule.id} ${does} ${outside.join("; ")}, outside the task's scope (${shown}): the proxy refuses those actions (token_scope) whatever the rule says`,
      });
    }
  }
  if (!isUnrestricted(scope)) {
    if (policy.unlisted === "hold") warnings.push({ ruleId: null, message: `unlisted: hold holds only actions inside the scope (${shown}); the rest are refused (token_scope), never held` });
    if (policy.mode === "report") warnings.push({ ruleId: null, message: `report mode blocks nothing the scope allows; actions outside the scope (${shown}) are still refused (token_scope)` });
  }
  return warnings;
}

/** Does the glob `pattern` (lower case) match the environment name? */
function globMatches(pattern: string, environment: string): boolean {
  return compileGlobs([pattern], { caseInsensitive: true })(environment);
}
