/**
 * The JSON Schema of the policy format, generated from the zod schema so the two cannot drift.
 * The committed copy (`policy.schema.json`) is what editors use; a unit test keeps it current.
 * Regenerate with: `bulkhead policy schema > lib/policy/policy.schema.json`.
 */
import { z } from "zod";
import { policySchema } from "@/lib/policy/schema";

export function policyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(policySchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
}
