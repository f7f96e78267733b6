/** Public surface of the policy layer: parse, compile, decide, explain. */
export { parsePolicy, formatPath, type PolicyError, type ParsePolicyResult, type ParseOptions } from "@/lib/policy/parse";
export { checkReferences, knownEnvironments, type PolicyContext } from "@/lib/policy/references";
export {
  policySchema,
  ruleSchema,
  normalizePolicy,
  type Policy,
  type PolicyRule,
  type PolicyInput,
  type RuleDecision,
} from "@/lib/policy/schema";
export { compilePolicy, type CompiledPolicy, type CompiledRule } from "@/lib/policy/compiled";
export { decide, decideAction, describeAction, type Decision, type ActionDecision, type Verdict } from "@/lib/policy/decide";
export { explainRequest, type ExplainOptions, type ExplainResult, type ExplainDecision } from "@/lib/policy/explain";
export { blastRadius, type BlastRadius, type ServiceReach, type ApprovalScope } from "@/lib/policy/blast-radius";
export { policyTemplates, findTemplate, type PolicyTemplate } from "@/lib/policy/templates";
export { policyJsonSchema } from "@/lib/policy/json-schema";
