import { describeScope, type TaskScope } from "@/lib/identity/scope";
import { outsideScope } from "@/lib/policy/scope";
import type { Effect, SemanticAction } from "@/lib/semantics/types";
import { ProxyRefusal } from "./errors";

export interface ScopeRefusal {
  refusal: ProxyRefusal;
  /** What the audit event records in place of a policy decision (no rule was consulted). */
  verdict: { effect: Effect; reason: string; ruleId: null };
}

/**
 * Layer 1, before any policy is consulted: every action of the request must lie inside the scope
 * it carries (the token's claim, or the sandbox's task). One action outside is enough to refuse
 * the whole request, with `token_scope`, whatever the policy would allow, and without asking a
 * human: an approval cannot grant what the token never carried.
 */
export function checkScope(scope: TaskScope, actions: readonly SemanticAction[]): ScopeRefusal | null {
  const outside = outsideScope(scope, actions);
  if (!outside) return null;
  return {
    refusal: new ProxyRefusal("denied", "token_scope", outside.reason, { layer: "identity", scope: describeScope(scope) }),
    verdict: { effect: outside.effect, reason: outside.reason, ruleId: null },
  };
}
