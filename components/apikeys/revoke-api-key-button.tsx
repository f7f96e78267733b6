"use client";

import { useState } from "react";
import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;

/**
 * Revoking asks for confirmation, saying what it does: it takes effect on the key's next request,
 * and cancels the approvals given through the key that are not used yet (cancelApprovalsVotedThrough).
 */
export function RevokeApiKeyButton({ id, name, action }: { id: string; name: string; action: Action }) {
  const { state, pending, formProps } = useFormAction(action, { resetOnSuccess: false });
  const [confirming, setConfirming] = useState(false);
  if (!confirming) {
    return (
      <button type="button" onClick={() => setConfirming(true)} aria-label={`Revoke ${name}`} className="text-xs font-semibold text-red-700 underline">
        Revoke
      </button>
    );
  }
  return (
    <form {...formProps} className="flex flex-wrap items-center gap-2">
      <input type="hidden" name="id" value={id} />
      <span className="text-xs text-slate-600" data-testid="revoke-key-warning">
        The key stops working at once, and approvals given through it that are not used yet are cancelled.
      </span>
      <button type="submit" disabled={pending} className="rounded bg-red-600 px-2 py-1 text-xs font-semibold text-white">
        Confirm revoke
      </button>
      <button type="button" onClick={() => setConfirming(false)} className="text-xs underline">
        Cancel
      </button>
      {state && !state.ok ? <span role="alert" className="text-xs text-red-700">{errorText(state)}</span> : null}
    </form>
  );
}
