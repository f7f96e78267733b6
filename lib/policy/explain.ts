/**
 * "What would the proxy do with this request under this policy?" Canonicalise, classify,
 * decide: the same three steps the proxy runs, for the dashboard simulator and the CLI.
 */
import { decide, type ActionDecision, type Verdict } from "@/lib/policy/decide";
import { parsePolicy, type PolicyError } from "@/lib/policy/parse";
import { outsideScope } from "@/lib/policy/scope";
import { compilePolicy } from "@/lib/policy/compiled";
import type { TaskScope } from "@/lib/identity/scope";
import { canonicalizeRequest, canonicalUrl } from "@/lib/semantics/canonical";
import { classify } from "@/lib/semantics/classify";
import { emptyInventory, type Inventory } from "@/lib/semantics/inventory";
import { defaultRegistry, type ServiceRegistry } from "@/lib/semantics/registry";
import { loadSqlParser } from "@/lib/semantics/sql";
import type { Effect, SemanticAction } from "@/lib/semantics/types";

export interface ExplainOptions {
  policyYaml: string;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  registry?: ServiceRegistry;
  inventory?: Inventory;
  now: Date | number;
  /** The task's scope: checked first, as the proxy does (a request outside it is refused whatever the policy says). */
  scope?: TaskScope;
}

export interface ExplainDecision {
  ok: true;
  /** Canonical method and URL, or null when the request was rejected before canonicalisation. */
  request: { method: string; url: string } | null;
  service: string | null;
  actions: SemanticAction[];
  effect: Effect | null;
  decision: Verdict;
  reason: string;
  ruleId: string | null;
  mode: "enforce" | "report";
  wouldBe?: Verdict;
  /** Set when the request is malformed or ambiguous: the proxy answers 400, whatever the mode. */
  rejected?: { code: string; reason: string };
  /** Set when the task's scope refuses the request before the policy is consulted (code `token_scope`). */
  outsideScope?: true;
  perAction: ActionDecision[];
}

export type ExplainResult = ExplainDecision | { ok: false; stage: "policy"; errors: PolicyError[] };

export async function explainRequest(options: ExplainOptions): Promise<ExplainResult> {
  const registry = options.registry ?? defaultRegistry();
  const inventory = options.inventory ?? emptyInventory;
  // Names the rules use must exist where the request is judged, as the proxy requires.
  const parsed = parsePolicy(options.policyYaml, { references: { registry, inventory } });
  if (!parsed.ok) return { ok: false, stage: "policy", errors: parsed.errors };
  const mode = parsed.policy.mode;
  // Without the parser SQL is classified as unparseable (irreversible): still a safe answer.
  await loadSqlParser().catch(() => undefined);

  const canonical = canonicalizeRequest({ method: options.method, url: options.url, headers: options.headers ?? {}, body: options.body ?? null });
  if (!canonical.ok) return rejected(null, null, canonical.code, canonical.reason, mode);
  const request = { method: canonical.request.method, url: canonicalUrl(canonical.request) };

  const classification = classify(canonical.request, registry, inventory);
  if (!classification.ok) return rejected(request, null, classification.code, classification.reason, mode);

  const outside = options.scope ? outsideScope(options.scope, classification.actions) : null;
  if (outside) {
    const base = { ok: true as const, request, service: classification.service, actions: classification.actions, effect: classification.effect, ruleId: null, perAction: [] };
    return { ...base, decision: "deny", reason: outside.reason, mode, outsideScope: true };
  }
  const decision = decide(compilePolicy(parsed.policy), classification.actions, options.now);
  const result: ExplainDecision = {
    ok: true,
    request,
    service: classification.service,
    actions: classification.actions,
    effect: classification.effect,
    decision: decision.decision,
    reason: decision.reason,
    ruleId: decision.ruleId,
    mode: decision.mode,
    perAction: decision.actions,
  };
  if (decision.wouldBe !== undefined) result.wouldBe = decision.wouldBe;
  return result;
}

function rejected(
  request: ExplainDecision["request"],
  service: string | null,
  code: string,
  reason: string,
  mode: "enforce" | "report",
): ExplainDecision {
  return {
    ok: true,
    request,
    service,
    actions: [],
    effect: null,
    decision: "deny",
    reason: `rejected (${code}): ${reason}`,
    ruleId: null,
    mode,
    rejected: { code, reason },
    perAction: [],
  };
}
