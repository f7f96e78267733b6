"use client";

import { useState } from "react";
import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;

/** Revoking asks for confirmation: it takes effect on the key's next request. */
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
    <form {...formProps} className="flex items-center gap-2">
      <input type="hidden" name="id" value={id} />
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
