import type { Db } from "@/lib/db/client";
import { parsePolicy, type PolicyError } from "@/lib/policy/parse";
import { loadRegistry } from "@/lib/services/registry-source";

// Apart from lib/tasks/policy.ts, whose explain imports the request classifiers (GraphQL, the SQL
// parser): creating a task checks its policy but classifies nothing, so `bulkhead task create`
// does not load them.

export function formatPolicyErrors(errors: readonly PolicyError[]): string[] {
  return errors.map((e) => `${e.line ? `line ${e.line}: ` : ""}${e.path ? `${e.path}: ` : ""}${e.message}`);
}

/**
 * The policy's errors, or null: its format, and that every service, environment and operation it
 * names exists in the registry and inventory stored now (a typo would make a rule that never applies).
 */
export async function policyErrors(db: Pick<Db, "service" | "setting">, policyYaml: string): Promise<string[] | null> {
  const { registry, inventory } = await loadRegistry(db);
  const parsed = parsePolicy(policyYaml, { references: { registry, inventory } });
  return parsed.ok ? null : formatPolicyErrors(parsed.errors);
}

/**
 * Scope entries naming a service the registry does not know, one sentence each, or null. A scope
 * is fixed for the task's life, so such an entry would match nothing, ever: the task would refuse
 * every request to the service meant (`token_scope`) and nobody would see why at creation. The
 * policy's own names are checked the same way (above). Environments are not checked: the
 * inventory is optional, and an unknown resource counts as the `unknown` environment.
 */
export async function scopeServiceErrors(db: Pick<Db, "service" | "setting">, services: readonly string[]): Promise<string[] | null> {
  const named = [...new Set(services.filter((s) => s !== "*"))];
  if (named.length === 0) return null;
  const { registry } = await loadRegistry(db);
  const known = new Set(["unknown", ...registry.services.map((s) => s.id)]);
  const missing = named.filter((s) => !known.has(s));
  if (missing.length === 0) return null;
  const list = [...known].sort().join(", ");
  return missing.map((s) => `The scope names the service "${s}", which does not exist (services: ${list}); a scope cannot change after creation, so add the service first or fix the name.`);
}
