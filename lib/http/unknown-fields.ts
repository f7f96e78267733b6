import { z } from "zod";
import { closest } from "@/lib/policy/suggest";

/**
 * Fields of a JSON object body that its route's schema does not read, as zod issues naming each
 * one (and the field it most likely meant). zod drops unknown keys, so `{"owner": "alice@…"}` sent
 * to POST /api/v1/agents, where the field is `ownerEmail`, registered the agent with the default
 * owner and answered 201: the caller's intent was lost without a word. A typo in a request to a
 * security API is refused, as a typo in a policy is.
 */
export function unknownFieldIssues(schema: z.ZodType, body: unknown): z.core.$ZodIssue[] {
  if (!(schema instanceof z.ZodObject) || body === null || typeof body !== "object" || Array.isArray(body)) return [];
  const known = Object.keys(schema.shape);
  const issues: z.core.$ZodIssue[] = [];
  for (const key of Object.keys(body)) {
    if (known.includes(key)) continue;
    const lower = key.toLowerCase();
    const meant = closest(key, known, 3) ?? (lower.length >= 3 ? known.find((k) => k.toLowerCase().startsWith(lower)) : undefined);
    issues.push({
      code: "custom",
      path: [key],
      message: `${key} is not a field of this request${meant ? ` (did you mean ${meant}?)` : ""}; its fields are ${known.join(", ")}`,
      input: undefined,
    });
  }
  return issues;
}
