import "server-only";
import { ZodError, type z } from "zod";
import { isAppError } from "@/lib/errors/app-error";
import type { Actor } from "@/lib/auth/actor";
import { requireActor } from "@/lib/auth/current";
import type { Permission } from "@/lib/auth/roles";

export type ActionResult<T> =
  | { ok: true; data: T }
  | {
      ok: false;
      message: string;
      fieldErrors?: Record<string, string[]>;
      /** What was submitted (secrets removed), so a form can show it again: bad input loses nothing. */
      values?: Record<string, string | undefined>;
    };

const SECRET_FIELD = /password|secret|token|confirm/i;

function echoValues(input: unknown): Record<string, string | undefined> | undefined {
  if (typeof input !== "object" || input === null) return undefined;
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(input)) if (typeof v === "string" && !SECRET_FIELD.test(k)) out[k] = v;
  return out;
}

/**
 * Every server action goes through here: it requires a session with `permission` (checked in the
 * action itself, not by middleware), parses its input with zod, and returns expected errors as
 * data for the form; unexpected errors are logged and reported generically. Next.js itself
 * rejects server-action POSTs whose Origin does not match the host (CSRF).
 */
export async function runAction<S extends z.ZodType, T>(
  permission: Permission,
  schema: S,
  input: unknown,
  fn: (actor: Actor, data: z.output<S>) => Promise<T>,
): Promise<ActionResult<T>> {
  try {
    const actor = await requireActor(permission);
    const data = schema.parse(input);
    return { ok: true, data: await fn(actor, data) };
  } catch (error) {
    if (error instanceof ZodError) {
      const fieldErrors: Record<string, string[]> = {};
      for (const issue of error.issues) {
        const key = issue.path.join(".") || "form";
        (fieldErrors[key] ??= []).push(issue.message);
      }
      return { ok: false, message: "Please correct the highlighted fields.", fieldErrors, values: echoValues(input) };
    }
    if (isAppError(error)) {
      const details = error.details as { fieldErrors?: Record<string, string[]> } | undefined;
      return { ok: false, message: error.userMessage, fieldErrors: details?.fieldErrors, values: echoValues(input) };
    }
    console.error("Unhandled error in server action", error);
    return { ok: false, message: "Something went wrong. Nothing was changed.", values: echoValues(input) };
  }
}

/** FormData to a plain object of strings (empty fields become undefined). */
export function formToObject(form: FormData): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of form.entries()) {
    if (key.startsWith("$ACTION")) continue;
    if (typeof value === "string") out[key] = value === "" ? undefined : value;
  }
  return out;
}
