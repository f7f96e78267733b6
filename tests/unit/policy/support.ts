/** Shared helpers for the policy tests. */
import { parsePolicy } from "@/lib/policy/parse";
import type { Policy } from "@/lib/policy/schema";
import { compilePolicy, type CompiledPolicy } from "@/lib/policy/compiled";
import type { Effect, SemanticAction } from "@/lib/semantics/types";

export function policy(yaml: string): Policy {
  const parsed = parsePolicy(yaml);
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => `${e.path}: ${e.message}`).join("\n"));
  return parsed.policy;
}

export function snapshot(yaml: string): CompiledPolicy {
  return compilePolicy(policy(yaml));
}

export function action(
  service: string,
  environment: string,
  operation: string,
  effect: Effect,
  resource = "-",
  detail?: Record<string, unknown>,
): SemanticAction {
  return { service, environment, operation, effect, resource, ...(detail ? { detail } : {}) };
}

export const NOW = Date.parse("2026-03-01T12:00:00Z");
