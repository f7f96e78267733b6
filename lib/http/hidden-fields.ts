import { z } from "zod";

/**
 * Fields a dashboard form sends without showing them: the id of what the form acts on, a button's
 * choice. Nobody can correct them by hand, so when one is refused the form's message says what is
 * wrong with it; it is never a field error, which a form would try to mark beside a field it does
 * not show ("Please correct the highlighted fields." with nothing highlighted). runAction reads
 * this registry for the top-level fields of an action's schema (lib/http/action.ts).
 */
export const hiddenFormFields = z.registry<{ problem: string }>();

/** `schema`, registered as a hidden field whose refusal reads `problem`. */
export function hiddenField<S extends z.ZodType>(schema: S, problem: string): S {
  hiddenFormFields.add(schema, { problem });
  return schema;
}

/** The id of the `what` (agent, task, credential...) a form acts on, sent in a hidden field. */
export function hiddenId(what: string): z.ZodUUID {
  return hiddenField(
    z.uuid(),
    `This form does not name a valid ${what}: its ${what} id is missing or malformed, so nothing was changed. The page may be out of date or the request was not made by it; reload the page and try again.`,
  );
}

/** The problems of the hidden fields among `error`'s issues, and the issues that remain. */
export function splitHiddenFieldIssues(schema: z.ZodType, error: z.ZodError): { problems: string[]; rest: z.core.$ZodIssue[] } {
  const shape = schema instanceof z.ZodObject ? (schema.shape as Record<string, z.ZodType>) : {};
  const problems: string[] = [];
  const rest: z.core.$ZodIssue[] = [];
  for (const issue of error.issues) {
    const key = issue.path[0];
    const field = typeof key === "string" && Object.hasOwn(shape, key) ? shape[key] : undefined;
    const inner = field instanceof z.ZodOptional ? (field.unwrap() as z.ZodType) : undefined;
    const problem = field ? (hiddenFormFields.get(field) ?? (inner ? hiddenFormFields.get(inner) : undefined))?.problem : undefined;
    if (problem === undefined) rest.push(issue);
    else if (!problems.includes(problem)) problems.push(problem);
  }
  return { problems, rest };
}
