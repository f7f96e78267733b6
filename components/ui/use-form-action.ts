"use client";

import { startTransition, useActionState, useCallback, useContext, useEffect, useRef, type FormEvent } from "react";
import { StepUpContext } from "@/components/auth/step-up";
import type { ActionResult } from "@/lib/http/action";
import { FORM_BODY_LIMIT_BYTES } from "@/lib/http/form-limit";

type Action<T> = (prev: ActionResult<T> | null, form: FormData) => Promise<ActionResult<T>>;

export interface FormActionOptions {
  /** Fields emptied after a failed submission (secrets: typed again, never sent back). */
  clearOnError?: string[];
  /** Empty the form after success (default true). */
  resetOnSuccess?: boolean;
}

/**
 * useActionState for dashboard forms, with two things React does not do on its own:
 * - what the person typed stays after a server-side error. A form whose action is a function
 *   is reset by React after every submission, and a <select> goes back to its first default
 *   whatever the echoed value says; so the form is submitted from onSubmit (no automatic
 *   reset) and emptied here only on success;
 * - a change that needs step-up opens the re-authentication dialog and, once confirmed, runs
 *   the same submission again, so nothing has to be typed twice. The dialog is opened after the
 *   refused submission has finished, not from inside it: React holds back the updates of other
 *   transitions (the dialog's own) while an async action is still running.
 * `action` stays on the form for submissions before the page's scripts have loaded.
 */
export function useFormAction<T>(action: Action<T>, options: FormActionOptions = {}) {
  const stepUp = useContext(StepUpContext);
  const submitted = useRef<FormData | null>(null);
  const run = useCallback<Action<T>>(
    (prev, form) => {
      submitted.current = form;
      const tooLarge = oversized(form);
      if (tooLarge) return Promise.resolve(tooLarge as ActionResult<T>);
      return action(prev, form).catch(unanswered);
    },
    [action],
  );
  const [state, dispatch, pending] = useActionState(run, null);
  const ref = useRef<HTMLFormElement>(null);
  // Each refused result opens the dialog once.
  const asked = useRef<unknown>(null);
  useEffect(() => {
    if (!state || state.ok || !state.stepUp || !stepUp || asked.current === state) return;
    asked.current = state;
    const form = submitted.current;
    void stepUp.request(state.stepUp.method).then((confirmed) => {
      if (confirmed && form) startTransition(() => dispatch(form));
    });
  }, [state, stepUp, dispatch]);
  const { clearOnError, resetOnSuccess = true } = options;
  const clear = clearOnError?.join(",") ?? "";
  useEffect(() => {
    const form = ref.current;
    if (!form || !state) return;
    if (state.ok) {
      if (resetOnSuccess) form.reset();
      return;
    }
    for (const name of clear.split(",").filter(Boolean)) {
      const field = form.elements.namedItem(name);
      if (field instanceof HTMLInputElement) field.value = "";
    }
  }, [state, resetOnSuccess, clear]);
  // After a refused submission, focus goes to the first field marked invalid, or, when none is and
  // focus was lost (the submit button is disabled while pending, which drops it to the page), to
  // the form's message: a keyboard or screen-reader user lands on what to fix, not at the top.
  useEffect(() => {
    const form = ref.current;
    if (!form || !state || state.ok || state.stepUp) return;
    const invalid = form.querySelector<HTMLElement>('[aria-invalid="true"]');
    if (invalid) {
      invalid.focus();
      return;
    }
    const active = document.activeElement;
    if (active && active !== document.body && form.contains(active)) return;
    const alert = form.querySelector<HTMLElement>('[role="alert"]');
    if (alert) {
      alert.tabIndex = -1;
      alert.focus();
    }
  }, [state]);
  const onSubmit = useCallback(
    (event: FormEvent<HTMLFormElement>) => {
      event.preventDefault();
      const submitter = (event.nativeEvent as SubmitEvent).submitter;
      const data = new FormData(event.currentTarget, submitter instanceof HTMLElement ? submitter : null);
      startTransition(() => dispatch(data));
    },
    [dispatch],
  );
  return { state, pending, formProps: { ref, action: dispatch, onSubmit } };
}

const MIB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(bytes < 10 * MIB ? 2 : 0)} MiB`;

/**
 * A submission larger than the dashboard takes, refused here before it is sent: Next.js would
 * answer it with 413 before Bulkhead's code ran, shown as a failed page with what was typed gone.
 * Counted as a multipart body: each field's name and value in UTF-8 and its part's headers.
 */
function oversized(form: FormData): ActionResult<never> | null {
  const encoder = new TextEncoder();
  let total = 0;
  let largest: { name: string; bytes: number } | null = null;
  for (const [name, value] of form.entries()) {
    const bytes = typeof value === "string" ? encoder.encode(value).length : value.size;
    total += 128 + encoder.encode(name).length + bytes;
    if (!largest || bytes > largest.bytes) largest = { name, bytes };
  }
  if (total <= FORM_BODY_LIMIT_BYTES) return null;
  const message = `This form is too large to send: ${mib(total)}, and the dashboard takes at most ${mib(FORM_BODY_LIMIT_BYTES)} a submission. Nothing was sent; what you typed is still here.`;
  const field = largest && largest.bytes > FORM_BODY_LIMIT_BYTES / 2 ? { [largest.name]: [`This field is ${mib(largest.bytes)}: shorten it.`] } : undefined;
  return { ok: false, message, fieldErrors: field };
}

/**
 * A submission that got no answer the form can read (the dashboard unreachable or restarting, the
 * connection cut, an answer that is not an action's): said in the form, with what was typed kept,
 * instead of replacing the page with an error page. Next.js's own redirects and not-found answers
 * are passed on as they are.
 */
function unanswered(error: unknown): ActionResult<never> {
  const digest = typeof error === "object" && error !== null ? (error as { digest?: unknown }).digest : undefined;
  if (typeof digest === "string" && digest.startsWith("NEXT_")) throw error;
  return {
    ok: false,
    message:
      "The dashboard did not answer this submission (it may be unreachable or restarting). What you typed is still here; check whether the change took effect before sending it again.",
  };
}

/** What to show for a failed submission where the form has no field of its own to mark. */
export function errorText(state: ActionResult<unknown> | null): string | null {
  if (!state || state.ok) return null;
  const fields = Object.values(state.fieldErrors ?? {}).flat();
  return fields.length > 0 ? fields.join(" ") : state.message;
}

const sentence = (s: string) => s.trim().replace(/\.$/, "");

/**
 * The alert of a form whose fields show their own errors (`marked`: the names of the fields it
 * marks). The result's message, unless it only repeats what a marked field already says (a
 * refusal about one field is both the message and that field's error): then a pointer to the
 * field, so the same sentence is not shown twice. Errors of fields the form does not mark follow,
 * so no refusal goes unseen.
 */
export function formAlert(state: ActionResult<unknown> | null, marked: readonly string[]): string | null {
  if (!state || state.ok) return null;
  const errors = state.fieldErrors ?? {};
  const shown = marked.flatMap((name) => errors[name] ?? []);
  const unmarked = Object.entries(errors)
    .filter(([name]) => !marked.includes(name))
    .flatMap(([, list]) => list);
  const repeated = shown.some((m) => sentence(m) === sentence(state.message));
  const head = repeated ? (shown.length > 1 ? "Please correct the highlighted fields." : "Please correct the highlighted field.") : state.message;
  return [head, ...unmarked.filter((m) => sentence(m) !== sentence(head))].join(" ");
}
