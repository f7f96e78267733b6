"use client";

import { useEffect, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
import { Button } from "@/components/ui/button";
import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Outcome = { status: string; approvals: number; required: number };
type Action = (prev: ActionResult<Outcome> | null, form: FormData) => Promise<ActionResult<Outcome>>;

/**
 * Approve or deny with a note. Either button first shows a confirmation that restates what will
 * happen (the structured actions, passed in as `restate`); only the confirmation submits. A
 * decision that needs step-up opens the re-authentication dialog and is then sent again.
 */
export function DecideForm({
  id,
  action,
  restate,
  irreversible,
  allowDiff,
}: {
  id: string;
  action: Action;
  restate: ReactNode;
  irreversible: boolean;
  /** The policy change "approve and allow" would save, when it is possible. */
  allowDiff: ReactNode | null;
}) {
  const { state, pending, formProps } = useFormAction(action, { resetOnSuccess: false });
  const [verdict, setVerdict] = useState<"approve" | "deny" | "approve_allow" | null>(null);
  const done = state?.ok ? state.data : null;
  // Keyboard: the confirmation takes the focus when it opens, Escape (or Back) closes it, and the
  // focus returns to the button that opened it, not to the page.
  const choicesRef = useRef<HTMLDivElement | null>(null);
  const confirmRef = useRef<HTMLDivElement | null>(null);
  const opener = useRef<string | null>(null);
  useEffect(() => {
    if (verdict !== null) confirmRef.current?.focus();
    else if (opener.current) choicesRef.current?.querySelector<HTMLButtonElement>(`button[data-verdict="${opener.current}"]`)?.focus();
  }, [verdict]);
  const back = () => {
    opener.current = verdict;
    setVerdict(null);
  };
  const onConfirmKey = (event: KeyboardEvent<HTMLDivElement>) => {
    if (event.key !== "Escape" || pending) return;
    event.preventDefault();
    back();
  };
  return (
    <form {...formProps} className="space-y-3" data-testid="decide-form">
      <input type="hidden" name="id" value={id} />
      <input type="hidden" name="verdict" value={verdict ?? ""} />
      <label className="block text-sm font-medium" htmlFor="decision-note">
        Note (kept in the audit; a denial&apos;s note is also sent to the agent)
      </label>
      <textarea id="decision-note" name="note" maxLength={500} rows={2} className="w-full rounded-md border border-slate-300 p-2 text-sm" />
      {verdict === null ? (
        <div className="flex gap-2" ref={choicesRef}>
          <Button type="button" variant="primary" data-verdict="approve" onClick={() => setVerdict("approve")} disabled={pending}>
            Approve…
          </Button>
          <Button type="button" variant="danger" data-verdict="deny" onClick={() => setVerdict("deny")} disabled={pending}>
            Deny…
          </Button>
          {allowDiff ? (
            <Button type="button" variant="secondary" data-verdict="approve_allow" onClick={() => setVerdict("approve_allow")} disabled={pending}>
              Approve and allow for the rest of the task…
            </Button>
          ) : null}
        </div>
      ) : (
        <div
          role="group"
          aria-label="Confirm the decision"
          ref={confirmRef}
          tabIndex={-1}
          onKeyDown={onConfirmKey}
          className="rounded-md border border-slate-300 bg-slate-50 p-3 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-600"
          data-testid="confirm-decision"
        >
          <p className="mb-2 text-sm font-semibold">
            {verdict === "deny"
              ? "You are about to deny this request. Nothing will be forwarded. The actions were:"
              : `You are about to approve this request. It will be forwarded once, exactly as shown, with these actions${irreversible ? " (at least one cannot be undone)" : ""}:`}
          </p>
          <div className="mb-3">{restate}</div>
          {verdict === "approve_allow" ? (
            <div className="mb-3" data-testid="allow-diff">
              <p className="mb-1 text-sm font-semibold">And the task&apos;s policy changes as follows: these exact actions will run without asking anyone until the task ends.</p>
              {allowDiff}
            </div>
          ) : null}
          <div className="flex gap-2">
            <Button type="submit" variant={verdict === "deny" ? "danger" : "primary"} disabled={pending}>
              {verdict === "deny" ? "Confirm denial" : verdict === "approve_allow" ? "Confirm approval and policy change" : "Confirm approval"}
            </Button>
            <Button type="button" variant="secondary" onClick={back} disabled={pending}>
              Back
            </Button>
          </div>
        </div>
      )}
      {done ? (
        <p role="status" className="text-sm text-green-800">
          {done.status === "pending" ? `Your approval is recorded: ${done.approvals} of ${done.required} approvers so far.` : `Decision recorded: ${done.status}.`}
        </p>
      ) : null}
      {state && !state.ok ? (
        <p role="alert" className="text-sm text-red-700">
          {errorText(state)}
        </p>
      ) : null}
    </form>
  );
}
