import type { Db } from "@/lib/db/client";
import { uuidSchema } from "@/lib/agents/agents";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { AppError } from "@/lib/errors/app-error";
import { describeScope, isUnrestricted, NO_SCOPE, parseCanonicalScope, parseScope, type TaskScope } from "@/lib/identity/scope";
import { parsePolicy } from "@/lib/policy/parse";
import { policyOutsideScope, scopeFromPolicy, type ScopeWarning } from "@/lib/policy/scope";
import type { Inventory } from "@/lib/semantics/inventory";
import type { ServiceRegistry } from "@/lib/semantics/registry";
import { UNKNOWN_ENVIRONMENT } from "@/lib/semantics/types";
import { loadRegistry } from "@/lib/services/registry-source";
import { formatPolicyErrors } from "./policy-errors";

/**
 * The scope a new task gets: the one given, or (when none is given) exactly what its policy (a
 * valid policy's YAML) reaches at creation. Invalid input is an INVALID_INPUT error on `scope`.
 */
export function resolveTaskScope(input: string | readonly string[] | undefined, policyYaml: string, now: Date): { scope: TaskScope; derived: boolean } {
  // An explicit empty list allows nothing; an omitted (or blank) scope is derived from the policy.
  if (Array.isArray(input) && input.join("").trim() === "") return { scope: NO_SCOPE, derived: false };
  const given = typeof input === "string" ? input.trim() : input?.join(" ").trim();
  if (!given) {
    const policy = parsePolicy(policyYaml);
    if (!policy.ok) throw new AppError("INVALID_INPUT", "The policy is not valid.", { details: { fieldErrors: { policyYaml: formatPolicyErrors(policy.errors) } } });
    const derived = scopeFromPolicy(policy.policy, now);
    if (!derived.ok) throw new AppError("INVALID_INPUT", derived.error, { details: { fieldErrors: { scope: [derived.error] } } });
    return { scope: derived.scope, derived: true };
  }
  const parsed = parseScope(given);
  if (!parsed.ok) throw new AppError("INVALID_INPUT", `The scope is not valid: ${parsed.errors.join(" ")}`, { details: { fieldErrors: { scope: parsed.errors } } });
  return { scope: parsed.scope, derived: false };
}

/** Scope entries naming a service or environment Bulkhead does not know: they match nothing. */
export function unknownScopeNames(scope: TaskScope, registry: ServiceRegistry, inventory: Inventory): ScopeWarning[] {
  const services = new Set(["unknown", ...registry.services.map((s) => s.id)]);
  const environments = new Set([UNKNOWN_ENVIRONMENT, ...inventory.entries.map((e) => e.environment.toLowerCase())]);
  for (const s of registry.services) if (s.environment) environments.add(s.environment.toLowerCase());
  const warnings: ScopeWarning[] = [];
  for (const e of scope.entries) {
    if (e.service !== "*" && !services.has(e.service)) {
      warnings.push({ ruleId: null, message: `scope entry ${e.service}:${e.environment}:${e.effect} names no known service (known: ${[...services].sort().join(", ")}); it matches nothing` });
    }
    if (!/[*?]/.test(e.environment) && !environments.has(e.environment)) {
      warnings.push({ ruleId: null, message: `scope entry ${e.service}:${e.environment}:${e.effect} names an environment the inventory does not know (known: ${[...environments].sort().join(", ")}); unknown resources count as ${UNKNOWN_ENVIRONMENT}` });
    }
  }
  return warnings;
}

export interface TaskScopeReport {
  taskId: string;
  /** Canonical scope text ("" allows nothing). */
  scope: string;
  /** For people: the scope, or "none". */
  scopeText: string;
  policyVersion: number;
  /** Policy rules that reach outside the scope, scope names Bulkhead does not know, policy-wide notes. */
  warnings: ScopeWarning[];
  /** Set when the policy checked does not parse. */
  policyErrors: string[] | null;
}

/**
 * The task's scope next to a policy (the stored one, or `policyYaml` to check before saving),
 * with a warning for every rule that lies outside the scope.
 */
export async function checkTaskScope(db: Db, actor: Actor, taskId: string, options: { policyYaml?: string; now?: Date } = {}): Promise<TaskScopeReport> {
  assertCan(actor, "read");
  const parsedId = uuidSchema.safeParse(taskId);
  const task = parsedId.success ? await db.task.findUnique({ where: { id: parsedId.data }, select: { id: true, scope: true, policyYaml: true, policyVersion: true } }) : null;
  if (!task) throw new AppError("NOT_FOUND", "No such task.");
  const scope = parseCanonicalScope(task.scope);
  const base = { taskId: task.id, scope: task.scope, policyVersion: task.policyVersion };
  if (!scope) {
    return { ...base, scopeText: "invalid", policyErrors: null, warnings: [{ ruleId: null, message: "the stored scope is not valid: the proxy refuses every request of this task" }] };
  }
  const { registry, inventory } = await loadRegistry(db);
  const warnings = unknownScopeNames(scope, registry, inventory);
  if (isUnrestricted(scope)) warnings.push({ ruleId: null, message: "the scope is unrestricted (*:*:irreversible): layer 1 stops nothing for this task, only its policy does; a task with a narrower scope needs a new task" });
  // With the names it uses checked against the services and inventory stored now, as the proxy
  // loads it: a service deleted since makes the stored policy one the proxy refuses outright.
  const policy = parsePolicy(options.policyYaml ?? task.policyYaml, { references: { registry, inventory } });
  if (!policy.ok) return { ...base, scopeText: describeScope(scope), policyErrors: formatPolicyErrors(policy.errors), warnings };
  warnings.push(...policyOutsideScope(policy.policy, scope, options.now ?? new Date()));
  return { ...base, scopeText: describeScope(scope), policyErrors: null, warnings };
}
