/**
 * The policy file format. A policy is an allowlist: rules name what a task may do, by service,
 * environment, resource, operation and effect; everything else is `unlisted` (denied, or held
 * for a human). See docs/policy.md for the order in which rules apply.
 */
import { z } from "zod";

export const effectSchema = z.enum(["read", "write", "destructive", "irreversible"]);

const patterns = (what: string) =>
  z.array(z.string().min(1, `empty ${what} pattern`)).min(1, `list at least one ${what}, or leave the key out to mean any`);

export const ruleSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "letters, digits, '-', '_' and '.'")
      .optional()
      .describe('Rule name used in decisions and audit; defaults to "rule-<position>".'),
    description: z.string().optional().describe("Why the rule exists, for people."),
    service: z.string().min(1).describe('Service id ("railway", "github", a custom service, "unknown") or "*" for any.'),
    environments: patterns("environment").optional().describe("Environment tags or globs; omitted means any."),
    resources: patterns("resource").optional().describe("Resource globs (IDs, owner/repo, table names); omitted means any."),
    operations: patterns("operation").optional().describe("Operation-name globs (volumeDelete, repos.delete, DROP TABLE); omitted means any."),
    effects: z
      .array(effectSchema)
      .min(1, "list at least one effect")
      .optional()
      .describe("Effects the rule covers; required for allow and hold rules, omitted on a deny rule means any."),
    decision: z.enum(["allow", "hold", "deny"]).default("allow").describe("What to do with a matching action."),
    waive_approval: z
      .boolean()
      .default(false)
      .describe("Let allowed irreversible actions through without a human approval."),
    expires_at: z.iso
      .datetime({ offset: true, error: "must be a date and time with its zone, such as 2026-12-31T18:00:00Z" })
      .optional()
      .describe("ISO 8601 date-time after which the rule no longer applies."),
  })
  .superRefine((rule, ctx) => {
    if (rule.decision !== "deny" && rule.effects === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["effects"],
        message: `effects is required for ${rule.decision} rules: list the effects you mean to ${rule.decision}`,
      });
    }
  });

export const policySchema = z
  .strictObject({
    mode: z.enum(["enforce", "report"]).default("enforce").describe("report: decide and log, but never block."),
    unlisted: z.enum(["deny", "hold"]).default("deny").describe("What happens to actions no rule covers."),
    rules: z.array(ruleSchema).default([]).describe("The allowlist; see docs/policy.md for the order of application."),
  })
  .superRefine((policy, ctx) => {
    const seen = new Map<string, number>();
    policy.rules.forEach((rule, i) => {
      if (rule.id === undefined) return;
      const first = seen.get(rule.id);
      if (first !== undefined) {
        ctx.addIssue({ code: "custom", path: ["rules", i, "id"], message: `duplicate rule id "${rule.id}" (also rules[${first}])` });
      } else {
        seen.set(rule.id, i);
      }
    });
  })
  .meta({
    title: "Bulkhead policy",
    description: "What an agent's task may do through the Bulkhead proxy.",
  });

export type PolicyInput = z.input<typeof policySchema>;
export type ParsedPolicy = z.output<typeof policySchema>;
export type RuleDecision = "allow" | "hold" | "deny";

/** A rule after defaults: every rule has an id. */
export type PolicyRule = z.output<typeof ruleSchema> & { id: string };
export interface Policy extends Omit<ParsedPolicy, "rules"> {
  rules: PolicyRule[];
}

/** Fills in rule ids ("rule-<n>") so every decision can name its rule. */
export function normalizePolicy(parsed: ParsedPolicy): Policy {
  const taken = new Set(parsed.rules.map((r) => r.id).filter((id): id is string => id !== undefined));
  const rules = parsed.rules.map((rule, i) => {
    if (rule.id !== undefined) return { ...rule, id: rule.id };
    let id = `rule-${i + 1}`;
    while (taken.has(id)) id = `${id}-auto`;
    taken.add(id);
    return { ...rule, id };
  });
  return { ...parsed, rules };
}
