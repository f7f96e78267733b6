import "server-only";
import { headers } from "next/headers";
import { ZodError, type z } from "zod";
import { AppError, isAppError } from "@/lib/errors/app-error";
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from "@/lib/db/errors";
import type { Actor } from "@/lib/auth/actor";
import { requireActor } from "@/lib/auth/current";
import type { Permission } from "@/lib/auth/roles";
import { loadAppConfig } from "@/lib/config/app";
import { clientAddress } from "./client-address";
import { checkOriginHeaders } from "./csrf";
import { assertStorableText } from "@/lib/validation/text";
import { fieldErrorsOf, formErrorMap } from "./form-errors";
import { splitHiddenFieldIssues } from "./hidden-fields";

export type ActionResult<T> =
  | { ok: true; data: T }
  | {
      ok: false;
      message: string;
      fieldErrors?: Record<string, string[]>;
      /** What was submitted (secrets removed), so a form can show it again: bad input loses nothing. */
      values?: Record<string, string | undefined>;
      /** The change needs a fresh password or identity-provider confirmation (lib/auth/step-up.ts). */
      stepUp?: { method: "password" | "oidc" };
    };

const SECRET_FIELD = /password|secret|token|confirm/i;

function echoValues(input: unknown): Record<string, string | undefined> | undefined {
  if (typeof input !== "object" || input === null) return undefined;
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(input)) if (typeof v === "string" && !SECRET_FIELD.test(k)) out[k] = v;
  return out;
}

/**
 * Refuses a server action that does not come from the dashboard's own pages. Next.js checks
 * the Origin of server actions only when there is one (a POST without Origin runs), so every
 * action checks it itself, before anything else: its Origin must be the dashboard's, or, without
 * one, Sec-Fetch-Site must say same-origin. proxy.ts applies the same rule to every unsafe
 * request first; this is the check that holds even if that one is bypassed or misconfigured.
 */
export async function assertSameOriginAction(): Promise<void> {
  const problem = checkOriginHeaders(await headers(), [new URL(loadAppConfig().publicUrl).origin]);
  if (problem) {
    throw new AppError("CSRF", `Refused: ${problem}.`, {
      userMessage: "This request did not come from the dashboard's own pages, so nothing was changed. Reload the page and try again.",
    });
  }
}

/** The client's address for this server action (see lib/http/client-address.ts). */
export async function actionClientAddress(): Promise<string | null> {
  const app = loadAppConfig();
  return clientAddress(await headers(), { peerToken: app.peerToken, trustedProxies: app.trustedProxies });
}

/** An error as a form's result: expected errors with their message, anything else generic. */
export function actionError<T>(error: unknown, input: unknown): ActionResult<T> {
  if (error instanceof ZodError) {
    return { ok: false, message: "Please correct the highlighted fields.", fieldErrors: fieldErrorsOf(error), values: echoValues(input) };
  }
  if (isAppError(error)) {
    const details = error.details as { fieldErrors?: Record<string, string[]>; stepUp?: { method: "password" | "oidc" } } | undefined;
    return {
      ok: false,
      message: error.userMessage,
      fieldErrors: details?.fieldErrors,
      values: echoValues(input),
      ...(error.code === "STEP_UP_REQUIRED" ? { stepUp: { method: details?.stepUp?.method ?? "password" } } : {}),
    };
  }
  if (isDatabaseUnavailable(error)) {
    console.error("Database unavailable in server action:", error instanceof Error ? error.message.split("\n").at(-1) : String(error));
    // A connection lost after the commit was sent cannot say whether it was applied.
    return { ok: false, message: `${DATABASE_UNAVAILABLE_MESSAGE} If the change does not show afterwards, it was not saved.`, values: echoValues(input) };
  }
  console.error("Unhandled error in server action", error);
  return { ok: false, message: "Something went wrong. Nothing was changed.", values: echoValues(input) };
}

/**
 * Every dashboard server action goes through here: it refuses requests from other origins,
 * requires a session with `permission` (checked in the action itself, not by middleware),
 * reads its input with `read` (formToObject, formText) and parses it with zod (errors as
 * sentences), and returns expected errors as data for the form; unexpected errors are logged and
 * reported generically.
 */
export async function runAction<S extends z.ZodType, T>(
  permission: Permission,
  schema: S,
  read: () => unknown,
  fn: (actor: Actor, data: z.output<S>) => Promise<T>,
): Promise<ActionResult<T>> {
  let input: unknown;
  try {
    await assertSameOriginAction();
    const actor = await requireActor(permission);
    // Read here, not by the caller: reading a form can refuse it (a field sent twice), and that
    // refusal is answered like any invalid input, after the origin and session checks.
    input = read();
    // NUL and lone surrogates are refused as a field error, never a database error (lib/validation/text.ts).
    assertStorableText(input);
    const parsed = schema.safeParse(input, { error: formErrorMap });
    if (!parsed.success) {
      // A refused hidden field (the id of what the form acts on) is said in the message: the form
      // has no field to highlight for it (lib/http/hidden-fields.ts).
      const { problems, rest } = splitHiddenFieldIssues(schema, parsed.error);
      if (problems.length === 0) throw parsed.error;
      return {
        ok: false,
        message: rest.length > 0 ? `${problems.join(" ")} Correct the highlighted fields too.` : problems.join(" "),
        ...(rest.length > 0 ? { fieldErrors: fieldErrorsOf(new ZodError(rest)) } : {}),
        values: echoValues(input),
      };
    }
    return { ok: true, data: await fn(actor, parsed.data) };
  } catch (error) {
    return actionError(error, input);
  }
}

/**
 * The form a server action was called with, or an empty one. Next.js hands an action whatever
 * arguments the request encodes, so a request built by hand (from the dashboard's own origin,
 * with a session) can pass a string, null or nothing where the form goes; each action starts with
 * this, and its validation then answers with the fields it lacks, as for an empty form, instead
 * of a TypeError becoming a 500.
 */
export function formOf(form: unknown): FormData {
  return form instanceof FormData ? form : new FormData();
}

/**
 * A form field sent more than once where the form has one: a browser never does that (each of
 * the dashboard's fields is one input, one select or one button), a request built by hand can.
 * Which of the values counts is then up to whoever reads it (FormData.get takes the first,
 * formToObject took the last), and a check made on one while another is used is the classic
 * differential; so such a form is refused, as input that does not validate, and nothing changes.
 */
function refuseRepeatedFields(counts: ReadonlyMap<string, number>): void {
  const repeated = [...counts].filter(([, count]) => count > 1).map(([name, count]) => `${name.slice(0, 64)} (${count} times)`);
  if (repeated.length === 0) return;
  // Said in the message, not as a field error: no field of the form can correct it, as for a
  // refused hidden field (lib/http/hidden-fields.ts).
  const message = `This form sent ${repeated.join(", ")} more than once, where it sends each once, so nothing was changed. The request was not made by the dashboard's page; reload it and try again.`;
  throw new AppError("INVALID_INPUT", message, { details: { repeatedFields: repeated } });
}

/**
 * One text field as submitted: "" when it was sent empty (a cleared textarea), undefined when it
 * was not sent at all (or is a file), so that validation refuses a missing field instead of
 * taking it for an empty one. A field sent more than once is refused (INVALID_INPUT).
 */
export function formText(form: FormData, name: string): string | undefined {
  refuseRepeatedFields(new Map([[name, form.getAll(name).length]]));
  const value = form.get(name);
  return typeof value === "string" ? value : undefined;
}

/**
 * FormData to a plain object of strings (empty fields become undefined). A field sent more than
 * once is refused (INVALID_INPUT), except those named in `multiValued` (a <select multiple>, a
 * group of checkboxes), which are left out: the action reads them with form.getAll.
 */
export function formToObject(form: FormData, multiValued: readonly string[] = []): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  // One pass, counted as it goes: a hand-built form may have thousands of fields.
  const counts = new Map<string, number>();
  for (const [key, value] of form.entries()) {
    if (key.startsWith("$ACTION") || multiValued.includes(key)) continue;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (typeof value === "string" && counts.get(key) === 1) out[key] = value === "" ? undefined : value;
  }
  refuseRepeatedFields(counts);
  return out;
}
