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

/**
 * The query parameters a route reads: `names`, of which those in `repeatable` may be given more
 * than once (`?type=a&type=b`); the others are read once, so a second value would be dropped.
 */
export interface QueryParameters {
  names: readonly string[];
  repeatable?: readonly string[];
}

/**
 * Query parameters a route does not read, and single-valued ones given twice, as zod issues
 * naming each. Ignoring them answered a filter with a typo (`GET /api/v1/approvals?status=pending`
 * for `state`, `GET /api/v1/tasks?agentId=…` for `agent`) with everything, unfiltered: a client
 * that then acted on each row acted on all of them.
 */
export function unknownQueryIssues(query: QueryParameters, params: URLSearchParams): z.core.$ZodIssue[] {
  const known = query.names;
  const issues: z.core.$ZodIssue[] = [];
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (seen.has(key)) continue;
    seen.add(key);
    if (known.includes(key)) {
      if (!query.repeatable?.includes(key) && params.getAll(key).length > 1) {
        issues.push({ code: "custom", path: [key], message: `${key} is given ${params.getAll(key).length} times; give it once`, input: undefined });
      }
      continue;
    }
    const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
    const lower = key.toLowerCase();
    const meant = known.length === 0 ? undefined : (closest(key, [...known], 3) ?? (lower.length >= 3 ? known.find((k) => k.toLowerCase().startsWith(lower) || lower.startsWith(k.toLowerCase())) : undefined));
    issues.push({
      code: "custom",
      path: [shown],
      message:
        known.length === 0
          ? `${shown} is not a parameter of this request; it takes no query parameters`
          : `${shown} is not a parameter of this request${meant ? ` (did you mean ${meant}?)` : ""}; its parameters are ${known.join(", ")}`,
      input: undefined,
    });
  }
  return issues;
}
