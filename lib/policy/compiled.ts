/**
 * A compiled policy: globs turned into predicates and rules indexed by service, effect and
 * (exact) operation, so `decide` looks at a handful of candidate rules instead of all of them.
 * Within each bucket rules keep their file order, so the first match is the lowest-numbered rule.
 */
import type { Policy, PolicyRule, RuleDecision } from "@/lib/policy/schema";
import { compileGlobs, isGlob, type Matcher } from "@/lib/semantics/glob";
import { EFFECTS, effectRank, type Effect } from "@/lib/semantics/types";

export interface CompiledRule {
  id: string;
  index: number;
  service: string;
  decision: RuleDecision;
  waiveApproval: boolean;
  effects: readonly Effect[];
  environments: Matcher | null;
  /** Case-insensitive: what deny rules match (a changed case cannot dodge them). */
  resources: Matcher | null;
  /** Case-sensitive: what allow and hold rules match, unless the action's service ignores case. */
  resourcesExact: Matcher | null;
  /** Null when the rule lists no operations or is filed under exact operation names. */
  operations: Matcher | null;
  /** Epoch milliseconds, or null for no expiry. */
  expiresAt: number | null;
  source: PolicyRule;
}

export interface Bucket {
  deny: CompiledRule[];
  allow: CompiledRule[];
  hold: CompiledRule[];
}

export interface EffectIndex {
  /** Rules whose operations are all exact names, keyed by lower-cased name. */
  byOperation: Map<string, Bucket>;
  /** Rules with no operations or with glob operations. */
  generic: Bucket;
}

/** One EffectIndex per effect, indexed by `effectRank`. */
export type ServiceIndex = readonly [EffectIndex, EffectIndex, EffectIndex, EffectIndex];

export interface CompiledPolicy {
  mode: "enforce" | "report";
  unlisted: "deny" | "hold";
  rules: readonly CompiledRule[];
  services: ReadonlyMap<string, ServiceIndex>;
  /** Index for services no rule names: only `service: "*"` rules. */
  fallback: ServiceIndex;
}

const emptyBucket = (): Bucket => ({ deny: [], allow: [], hold: [] });
const emptyIndex = (): ServiceIndex =>
  [0, 1, 2, 3].map(() => ({ byOperation: new Map<string, Bucket>(), generic: emptyBucket() })) as unknown as ServiceIndex;

export function slotFor(index: ServiceIndex, effect: Effect): EffectIndex {
  return index[effectRank(effect)] as EffectIndex;
}

function compileRule(rule: PolicyRule, index: number): CompiledRule & { exactOperations: string[] | null } {
  const ci = { caseInsensitive: true };
  const ops = rule.operations;
  const exact = ops !== undefined && !ops.some(isGlob) ? ops.map((o) => o.toLowerCase()) : null;
  return {
    id: rule.id,
    index,
    service: rule.service,
    decision: rule.decision,
    waiveApproval: rule.waive_approval,
    effects: rule.effects ?? EFFECTS,
    environments: rule.environments ? compileGlobs(rule.environments, ci) : null,
    resources: rule.resources ? compileGlobs(rule.resources, ci) : null,
    resourcesExact: rule.resources ? compileGlobs(rule.resources) : null,
    operations: ops && !exact ? compileGlobs(ops, ci) : null,
    expiresAt: rule.expires_at ? Date.parse(rule.expires_at) : null,
    source: rule,
    exactOperations: exact,
  };
}

function file(index: ServiceIndex, rule: CompiledRule & { exactOperations: string[] | null }): void {
  for (const effect of rule.effects) {
    const slot = slotFor(index, effect);
    if (rule.exactOperations) {
      for (const op of new Set(rule.exactOperations)) {
        let bucket = slot.byOperation.get(op);
        if (!bucket) slot.byOperation.set(op, (bucket = emptyBucket()));
        bucket[rule.decision].push(rule);
      }
    } else {
      slot.generic[rule.decision].push(rule);
    }
  }
}

export function compilePolicy(policy: Policy): CompiledPolicy {
  const compiled = policy.rules.map(compileRule);
  const names = new Set(compiled.map((r) => r.service).filter((s) => s !== "*"));
  const services = new Map<string, ServiceIndex>();
  for (const name of names) {
    const index = emptyIndex();
    for (const rule of compiled) if (rule.service === name || rule.service === "*") file(index, rule);
    services.set(name, index);
  }
  const fallback = emptyIndex();
  for (const rule of compiled) if (rule.service === "*") file(fallback, rule);
  const rules = compiled.map(({ exactOperations: _, ...rule }) => rule);
  return { mode: policy.mode, unlisted: policy.unlisted, rules, services, fallback };
}
