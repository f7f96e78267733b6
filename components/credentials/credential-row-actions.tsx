"use client";

import { useState } from "react";
import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type RotateAction = (prev: ActionResult<{ name: string }> | null, form: FormData) => Promise<ActionResult<{ name: string }>>;
type DeleteAction = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;

/** Rotate (new secret in a password input) and delete (asks for confirmation) for one credential. */
export function CredentialRowActions({ id, name, rotate, remove }: { id: string; name: string; rotate: RotateAction; remove: DeleteAction }) {
  const { state: rotated, pending: rotating, formProps: rotateForm } = useFormAction(rotate, { clearOnError: ["secret"] });
  const { state: deleted, pending: deleting, formProps: deleteForm } = useFormAction(remove, { resetOnSuccess: false });
  const [confirming, setConfirming] = useState(false);
  const rotateError = errorText(rotated);
  return (
    <div className="flex flex-col gap-2">
      <form {...rotateForm} className="flex items-center gap-2">
        <input type="hidden" name="id" value={id} />
        <input
          type="password"
          name="secret"
          required
          autoComplete="off"
          aria-label={`New secret for ${name}`}
          placeholder="New secret"
          className="w-40 rounded-md border-0 px-2 py-1 text-xs ring-1 ring-inset ring-slate-300"
        />
        <button type="submit" disabled={rotating} className="text-xs font-semibold text-brand-700 underline">
          Rotate
        </button>
      </form>
      {rotateError ? <span role="alert" className="text-xs text-red-700">{rotateError}</span> : null}
      {rotated?.ok ? <span role="status" className="text-xs text-emerald-800">Rotated.</span> : null}
      {confirming ? (
        <form {...deleteForm} className="flex items-center gap-2">
          <input type="hidden" name="id" value={id} />
          <button type="submit" disabled={deleting} className="rounded bg-red-600 px-2 py-1 text-xs font-semibold text-white">
            Confirm delete
          </button>
          <button type="button" onClick={() => setConfirming(false)} className="text-xs underline">
            Cancel
          </button>
        </form>
      ) : (
        <button type="button" onClick={() => setConfirming(true)} className="self-start text-xs font-semibold text-red-700 underline">
          Delete
        </button>
      )}
      {deleted && !deleted.ok ? <span role="alert" className="text-xs text-red-700">{errorText(deleted)}</span> : null}
    </div>
  );
}
