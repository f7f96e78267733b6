/**
 * Does a new policy let a task do dangerous things that the old one did not? Saving such a
 * policy needs a fresh confirmation of identity (lib/auth/step-up.ts). Pure: two policies in,
 * a list of reasons out (empty: nothing widened).
 *
 * Dangerous grants, per rule of the new policy:
 *   - `waive_approval` on irreversible effects (they then run without a human);
 *   - `service: "*"` on an allow or hold rule (every service, including custom ones added later);
 *   - irreversible effects in an allow rule (new irreversible reach, even if held);
 *   - destructive effects in an allow rule (they run without a human).
 * Such a rule counts only if no rule of the old policy already covered it: same or "*" service,
 * at least the same decision (allow covers hold), a superset of its effects, of its listed
 * environments, resources and operations (compared as written, which is conservative: a rule
 * that glob matching would cover but the text does not still asks), a waiver if it waives, and
 * an expiry no earlier. The policy as a whole widens when it switches from enforce to report
 * mode (nothing is blocked any more), and when a deny rule of the old policy is no longer
 * covered by a deny rule of the new one (removing a deny can let through what an allow rule
 * below it grants).
 */
import type { Policy, PolicyRule } from "./schema";

const RANK = { hold: 1, allow: 2 } as const;

function listCovers(outer: readonly string[] | undefined, inner: readonly string[] | undefined): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return inner.every((p) => outer.includes(p));
}

function expiryCovers(outer: PolicyRule, inner: PolicyRule): boolean {
  if (outer.expires_at === undefined) return true;
  if (inner.expires_at === undefined) return false;
  return Date.parse(inner.expires_at) <= Date.parse(outer.expires_at);
}

function scopeCovers(outer: PolicyRule, inner: PolicyRule): boolean {
  return (
    (outer.service === "*" || outer.service === inner.service) &&
    listCovers(outer.environments, inner.environments) &&
    listCovers(outer.resources, inner.resources) &&
    listCovers(outer.operations, inner.operations) &&
    expiryCovers(outer, inner)
  );
}

function grantCovers(old: PolicyRule, rule: PolicyRule): boolean {
  if (old.decision === "deny" || rule.decision === "deny") return false;
  if (RANK[old.decision] < RANK[rule.decision]) return false;
  if (!listCovers(old.effects, rule.effects)) return false;
  if (waives(rule) && !waives(old)) return false;
  return scopeCovers(old, rule);
}

function denyCovers(next: PolicyRule, old: PolicyRule): boolean {
  return next.decision === "deny" && listCovers(next.effects, old.effects) && scopeCovers(next, old);
}

function waives(rule: PolicyRule): boolean {
  return rule.decision === "allow" && rule.waive_approval && (rule.effects ?? []).includes("irreversible");
}

function dangers(rule: PolicyRule): string[] {
  if (rule.decision === "deny") return [];
  const effects = rule.effects ?? [];
  const out: string[] = [];
  if (waives(rule)) out.push("waives approval for irreversible effects");
  if (rule.service === "*") out.push('applies to every service (service: "*")');
  if (rule.decision === "allow" && effects.includes("irreversible") && !waives(rule)) out.push("allows irreversible effects");
  if (rule.decision === "allow" && effects.includes("destructive")) out.push("allows destructive effects without approval");
  return out;
}

/** Why `next` widens what a task can do without a human compared with `previous` (null: a new task, which could do nothing). */
export function policyWidenings(previous: Policy | null, next: Policy): string[] {
  const oldRules = previous?.rules ?? [];
  const reasons: string[] = [];
  if (next.mode === "report" && (previous === null || previous.mode !== "report")) {
    reasons.push("report mode lets every request through");
  }
  for (const rule of next.rules) {
    const found = dangers(rule);
    if (found.length === 0 || oldRules.some((old) => grantCovers(old, rule))) continue;
    reasons.push(`rule ${rule.id} ${found.join(", ")}`);
  }
  for (const old of oldRules) {
    if (old.decision === "deny" && !next.rules.some((rule) => denyCovers(rule, old))) {
      reasons.push(`deny rule ${old.id} was removed or narrowed`);
    }
  }
  return reasons;
}
