/**
 * What a policy lets a task reach, per service: environments, the highest effect it may cause,
 * what passes without a human and what waits for one. Read straight from the rules, so it
 * describes the policy's intent (the dashboard shows it next to the YAML).
 */
import type { Policy, PolicyRule } from "@/lib/policy/schema";
import { EFFECTS, effectRank, maxEffectOf, type Effect } from "@/lib/semantics/types";

export interface ApprovalScope {
  ruleId: string;
  effects: Effect[];
  why: "hold rule" | "irreversible without waive_approval";
}

export interface ServiceReach {
  /** A service id, or "*" for rules that apply to every service. */
  service: string;
  /** Environment patterns, or "any" when a rule leaves environments open. */
  environments: string[] | "any";
  resources: string[] | "any";
  /** Highest effect the task can cause, with or without approval; null if only denials. */
  highestEffect: Effect | null;
  /** Effects that pass without a human. */
  allowedWithoutApproval: Effect[];
  needsApproval: ApprovalScope[];
  deniedBy: string[];
}

export interface BlastRadius {
  mode: Policy["mode"];
  /** With `unlisted: hold` anything not listed can still happen after an approval. */
  unlisted: Policy["unlisted"];
  services: ServiceReach[];
}

const sortEffects = (effects: Iterable<Effect>): Effect[] => [...new Set(effects)].sort((a, b) => effectRank(a) - effectRank(b));

function union(rules: readonly PolicyRule[], key: "environments" | "resources"): string[] | "any" {
  const out = new Set<string>();
  for (const rule of rules) {
    const values = rule[key];
    if (values === undefined) return "any";
    values.forEach((v) => out.add(v));
  }
  return [...out].sort();
}

export function blastRadius(policy: Policy, now?: Date | number): BlastRadius {
  const nowMs = now === undefined ? null : typeof now === "number" ? now : now.getTime();
  const live = policy.rules.filter((r) => nowMs === null || !r.expires_at || Date.parse(r.expires_at) > nowMs);
  const services = [...new Set(live.map((r) => r.service))].sort();
  return {
    mode: policy.mode,
    unlisted: policy.unlisted,
    services: services.map((service) => reach(service, live.filter((r) => r.service === service))),
  };
}

function reach(service: string, rules: readonly PolicyRule[]): ServiceReach {
  const granting = rules.filter((r) => r.decision !== "deny");
  const allowed: Effect[] = [];
  const needsApproval: ApprovalScope[] = [];
  for (const rule of granting) {
    const effects = rule.effects ?? [...EFFECTS];
    if (rule.decision === "hold") {
      needsApproval.push({ ruleId: rule.id, effects: sortEffects(effects), why: "hold rule" });
      continue;
    }
    for (const effect of effects) {
      if (effect !== "irreversible" || rule.waive_approval) allowed.push(effect);
    }
    if (effects.includes("irreversible") && !rule.waive_approval) {
      needsApproval.push({ ruleId: rule.id, effects: ["irreversible"], why: "irreversible without waive_approval" });
    }
  }
  const reachable = granting.flatMap((r) => r.effects ?? [...EFFECTS]);
  return {
    service,
    environments: granting.length ? union(granting, "environments") : [],
    resources: granting.length ? union(granting, "resources") : [],
    highestEffect: reachable.length ? maxEffectOf(reachable) : null,
    allowedWithoutApproval: sortEffects(allowed),
    needsApproval,
    deniedBy: rules.filter((r) => r.decision === "deny").map((r) => r.id),
  };
}
