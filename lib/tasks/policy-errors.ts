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
