/**
 * The decision. Pure: plain values in, a decision out; no I/O, no clock (`now` is an argument).
 *
 * Order of application, for each action of a request (written out here and nowhere else):
 *   1. An explicit `deny` rule that matches → deny (its resources also match the resource without
 *      a format suffix: `prod-db.json` is `prod-db` to a Rails-style server; and an SQL table's
 *      other spellings: `public.secrets` is `secrets`).
 *   2. An `allow` rule that matches → allow; but an irreversible action is held for a human
 *      unless a matching allow rule has `waive_approval: true`.
 *   3. A `hold` rule that matches (and no allow rule does) → hold.
 *   4. No rule matches → the policy's `unlisted` setting (deny by default, or hold).
 * Expired rules (`expires_at` <= now) match nothing.
 * The request's decision is the most restrictive over its actions (deny > hold > allow).
 * In `report` mode the decision is always allow and `wouldBe` carries the real one.
 */
import { slotFor, type Bucket, type CompiledRule, type CompiledPolicy } from "@/lib/policy/compiled";
import { maxEffectOf, NO_RESOURCE, type Effect, type SemanticAction } from "@/lib/semantics/types";

export type Verdict = "allow" | "deny" | "hold";

export interface ActionDecision {
  action: SemanticAction;
  decision: Verdict;
  reason: string;
  ruleId: string | null;
}

export interface Decision {
  /** What the proxy must do. Always "allow" in report mode. */
  decision: Verdict;
  reason: string;
  ruleId: string | null;
  /** The most severe effect among the actions. */
  effect: Effect;
  mode: "enforce" | "report";
  /** Report mode only: the decision enforce mode would have made. */
  wouldBe?: Verdict;
  /** One entry per action, in request order. */
  actions: ActionDecision[];
}

const SEVERITY: Record<Verdict, number> = { allow: 0, hold: 1, deny: 2 };

/**
 * Resources: a deny rule matches in any case (changing case cannot dodge it); an allow or hold
 * rule matches the resource as written, unless the action's service ignores case (GitHub), so an
 * allowance for `Kx9Prod` (an approval's "allow for the rest of the task" included) does not
 * reach `kx9prod`, another resource on a case-sensitive API.
 */
function matches(rule: CompiledRule, action: SemanticAction, now: number, aliases: readonly string[] = [], anyCase = true): boolean {
  if (rule.expiresAt !== null && rule.expiresAt <= now) return false;
  if (rule.environments && !rule.environments(action.environment)) return false;
  const resources = anyCase || action.caseInsensitive ? rule.resources : rule.resourcesExact;
  if (resources && !resources(action.resource) && !aliases.some((alias) => resources(alias))) return false;
  if (rule.operations && !rule.operations(action.operation)) return false;
  return true;
}

const FORMAT_SUFFIX = /\.[A-Za-z0-9]{1,10}$/;

/**
 * The resource without a format suffix on its last part (`prod-db.json` → `prod-db`), or null. A
 * Rails-style server routes `DELETE /volumes/prod-db.json` to the volume `prod-db`, while the
 * route's parameter takes the segment whole; a deny rule naming `prod-db` must stop it too. Only
 * deny rules read it, so it can make a decision stricter, never laxer.
 */
export function resourceWithoutFormatSuffix(resource: string): string | null {
  if (resource === NO_RESOURCE || !FORMAT_SUFFIX.test(resource)) return null;
  const stripped = resource.replace(FORMAT_SUFFIX, "");
  return stripped === "" || stripped.endsWith("/") || stripped.endsWith(".") ? null : stripped;
}

/**
 * The other names of an SQL table resource (`detail.resourceKind: "table"`): PostgreSQL finds
 * `secrets` through the search path (`public` by default) and `public.secrets` or
 * `app.public.secrets` name the same table, so a deny rule naming either spelling must stop the
 * others (`public.secrets` → `secrets`; `app.public.secrets` → `public.secrets`, `secrets`;
 * `secrets` → `public.secrets`). Deny rules only: stricter, never laxer.
 */
export function tableAliases(action: SemanticAction): string[] {
  if (action.detail?.["resourceKind"] !== "table" || action.resource === NO_RESOURCE) return [];
  const parts = action.resource.split(".");
  if (parts.length === 1) {
    // After `SET search_path = hr` earlier in the request, `payroll` may be `hr.payroll`.
    const path = action.detail["searchPath"];
    const schemas = Array.isArray(path) ? path.filter((s): s is string => typeof s === "string" && s !== "" && !s.startsWith("$")) : [];
    return [...new Set([`public.${action.resource}`, ...schemas.map((schema) => `${schema}.${action.resource}`)])];
  }
  return [...new Set([parts.slice(-2).join("."), parts[parts.length - 1] as string])].filter((a) => a !== action.resource);
}

/** What a deny rule's resources are also matched against: see resourceWithoutFormatSuffix and tableAliases. */
function denyAliases(action: SemanticAction): string[] {
  const unsuffixed = resourceWithoutFormatSuffix(action.resource);
  return [...(unsuffixed === null ? [] : [unsuffixed]), ...tableAliases(action)];
}

/** First matching rule (lowest index) of one decision kind across the two candidate buckets. */
function first(
  kind: keyof Bucket,
  buckets: readonly (Bucket | undefined)[],
  action: SemanticAction,
  now: number,
  pick: (rule: CompiledRule) => boolean = () => true,
  aliases: readonly string[] = [],
): CompiledRule | null {
  let best: CompiledRule | null = null;
  for (const bucket of buckets) {
    if (!bucket) continue;
    for (const rule of bucket[kind]) {
      if (best && rule.index >= best.index) break;
      if (pick(rule) && matches(rule, action, now, aliases, kind === "deny")) {
        best = rule;
        break;
      }
    }
  }
  return best;
}

/** "irreversible `volumeDelete` on production volume vol_123" */
export function describeAction(action: SemanticAction): string {
  const kind = typeof action.detail?.["resourceKind"] === "string" ? `${action.detail["resourceKind"]} ` : "";
  const target = action.resource === NO_RESOURCE ? "" : ` ${kind}${action.resource}`;
  const note = typeof action.detail?.["note"] === "string" ? ` (${action.detail["note"]})` : "";
  return `${action.effect} \`${action.operation}\` on ${action.environment}${target}${note}`;
}

export function decideAction(policy: CompiledPolicy, action: SemanticAction, now: number): ActionDecision {
  const index = policy.services.get(action.service) ?? policy.fallback;
  const slot = slotFor(index, action.effect);
  const buckets = [slot.byOperation.size > 0 ? slot.byOperation.get(action.operation.toLowerCase()) : undefined, slot.generic];
  const what = describeAction(action);

  const deny = first("deny", buckets, action, now, undefined, denyAliases(action));
  if (deny) return { action, decision: "deny", ruleId: deny.id, reason: `${what}: denied by rule ${deny.id}` };

  const allow = first("allow", buckets, action, now);
  if (allow) {
    if (action.effect !== "irreversible" || allow.waiveApproval) {
      const waived = action.effect === "irreversible" ? " (approval waived)" : "";
      return { action, decision: "allow", ruleId: allow.id, reason: `${what}: allowed by rule ${allow.id}${waived}` };
    }
    const waiver = first("allow", buckets, action, now, (r) => r.waiveApproval);
    if (waiver) return { action, decision: "allow", ruleId: waiver.id, reason: `${what}: allowed by rule ${waiver.id} (approval waived)` };
    return {
      action,
      decision: "hold",
      ruleId: allow.id,
      reason: `${what}: irreversible, needs a human approval (rule ${allow.id} allows it without waive_approval)`,
    };
  }

  const hold = first("hold", buckets, action, now);
  if (hold) return { action, decision: "hold", ruleId: hold.id, reason: `${what}: rule ${hold.id} requires a human approval` };

  const why = unlistedReason(policy, action, now);
  if (policy.unlisted === "hold") return { action, decision: "hold", ruleId: null, reason: `${what}: ${why}; held for approval (unlisted: hold)` };
  return { action, decision: "deny", ruleId: null, reason: `${what}: ${why}` };
}

/** Why nothing matched, phrased for a person. Looks only at the action's service/effect slot. */
function unlistedReason(policy: CompiledPolicy, action: SemanticAction, now: number): string {
  const slot = slotFor(policy.services.get(action.service) ?? policy.fallback, action.effect);
  const near = new Map<string, CompiledRule>();
  for (const bucket of [slot.generic, ...slot.byOperation.values()]) {
    for (const rule of [...bucket.allow, ...bucket.hold]) {
      if ((rule.expiresAt === null || rule.expiresAt > now) && (rule.environments === null || rule.environments(action.environment))) {
        near.set(rule.id, rule);
      }
    }
  }
  const scope = `${action.effect} effects on ${action.service}/${action.environment}`;
  if (near.size === 0) return `no rule allows ${scope}`;
  const ids = [...near.values()].sort((a, b) => a.index - b.index).map((r) => r.id);
  const shown = ids.slice(0, 3).join(", ") + (ids.length > 3 ? ", …" : "");
  return `no rule covers this operation and resource (${shown} allow ${scope} for other operations or resources)`;
}

export function decide(policy: CompiledPolicy, actions: readonly SemanticAction[], now: Date | number): Decision {
  const nowMs = typeof now === "number" ? now : now.getTime();
  const perAction = actions.map((action) => decideAction(policy, action, nowMs));
  const effect = maxEffectOf(actions.map((a) => a.effect));
  let worst: ActionDecision | null = null;
  for (const d of perAction) if (!worst || SEVERITY[d.decision] > SEVERITY[worst.decision]) worst = d;

  const verdict: Verdict = worst ? worst.decision : "deny";
  let reason = worst ? worst.reason : "request carries no actions";
  const others = perAction.filter((d) => d !== worst && d.decision === verdict).length;
  if (others > 0 && verdict !== "allow") reason += ` (and ${others} more action${others > 1 ? "s" : ""})`;
  const ruleId = worst ? worst.ruleId : null;

  if (policy.mode === "report") {
    const prefix = verdict === "allow" ? "" : `report mode, would ${verdict}: `;
    return { decision: "allow", wouldBe: verdict, reason: prefix + reason, ruleId, effect, mode: "report", actions: perAction };
  }
  return { decision: verdict, reason, ruleId, effect, mode: "enforce", actions: perAction };
}
