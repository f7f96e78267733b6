/**
 * A rule must name things that exist: a service of the registry (built-ins and custom services),
 * environments of the inventory, operations the service can produce. A typo in a deny rule
 * (`service: railwy`, `operations: [volumDelete]`) would otherwise be a rule that never applies,
 * and nobody would notice until the action it was meant to stop went through. Checked wherever a
 * policy is saved or checked, and by the worker against the registry it enforces with.
 */
import type { PolicyRule } from "@/lib/policy/schema";
import { hint } from "@/lib/policy/suggest";
import { checkOperation, unknownVocabulary, vocabularyOf, type Vocabulary } from "@/lib/policy/vocabulary";
import { compileGlob, isGlob } from "@/lib/semantics/glob";
import type { Inventory } from "@/lib/semantics/inventory";
import type { ServiceRegistry } from "@/lib/semantics/registry";
import { UNKNOWN_ENVIRONMENT } from "@/lib/semantics/types";

/** What a policy's names are checked against: the registry and inventory in force. */
export interface PolicyContext {
  registry: ServiceRegistry;
  inventory: Inventory;
}

export interface ReferenceError {
  path: Array<string | number>;
  message: string;
}

const UNKNOWN_SERVICE = "unknown";

/** Environments that exist: the inventory's, the services' fixed ones, and production (the default). */
export function knownEnvironments(context: PolicyContext): string[] {
  const names = new Set<string>([UNKNOWN_ENVIRONMENT]);
  for (const entry of context.inventory.entries) names.add(entry.environment);
  for (const service of context.registry.services) if (service.environment) names.add(service.environment);
  return [...names];
}

/** Vocabularies per registry, built once (a registry is immutable; the worker checks every task against one). */
const VOCABULARIES = new WeakMap<ServiceRegistry, Map<string, Vocabulary>>();
function vocabulariesOf(registry: ServiceRegistry): Map<string, Vocabulary> {
  let map = VOCABULARIES.get(registry);
  if (!map) {
    map = new Map<string, Vocabulary>(registry.services.map((s) => [s.id, vocabularyOf(s)]));
    map.set(UNKNOWN_SERVICE, unknownVocabulary);
    VOCABULARIES.set(registry, map);
  }
  return map;
}

export function checkReferences(rules: readonly PolicyRule[], context: PolicyContext): ReferenceError[] {
  const errors: ReferenceError[] = [];
  const services = context.registry.services.map((s) => s.id);
  const environments = knownEnvironments(context);
  const vocabularies = vocabulariesOf(context.registry);

  rules.forEach((rule, i) => {
    let scope: Vocabulary[] | null;
    if (rule.service === "*") scope = [...vocabularies.values()];
    else if (vocabularies.has(rule.service)) scope = [vocabularies.get(rule.service) as Vocabulary];
    else {
      errors.push({
        path: ["rules", i, "service"],
        message: `service ${JSON.stringify(rule.service)} does not exist${hint(rule.service, [...services, UNKNOWN_SERVICE])}; known services: ${[...services, UNKNOWN_SERVICE, "*"].join(", ")}`,
      });
      scope = null;
    }
    rule.environments?.forEach((pattern, j) => {
      const lower = pattern.toLowerCase();
      const exists = isGlob(lower) ? environments.some((e) => compileGlob(lower)(e.toLowerCase())) : environments.some((e) => e.toLowerCase() === lower);
      if (!exists) {
        errors.push({
          path: ["rules", i, "environments", j],
          message: `environment ${JSON.stringify(pattern)} ${isGlob(pattern) ? "matches no environment" : "does not exist"}${hint(pattern.replace(/[*?]/g, ""), environments)}; known environments (from the inventory): ${environments.join(", ")}`,
        });
      }
    });
    if (scope === null) return;
    const what = rule.service === "*" ? "any service" : `service ${rule.service}`;
    rule.operations?.forEach((pattern, j) => {
      const problem = checkOperation(pattern, scope);
      if (problem) errors.push({ path: ["rules", i, "operations", j], message: `operation ${JSON.stringify(pattern)} ${problem.replace("the service", what)}` });
    });
  });
  return errors;
}
