"use client";

import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type BindAction = (prev: ActionResult<{ name: string }> | null, form: FormData) => Promise<ActionResult<{ name: string }>>;

/**
 * Declares (or changes) the environments a credential serves; what it typed survives an error.
 * It decides where a secret is injected, so it needs a recent sign-in: a stale session gets the
 * re-authentication dialog and the same submission runs again once confirmed (useFormAction).
 */
export function BindCredentialForm({ id, name, environments, bind }: { id: string; name: string; environments: readonly string[]; bind: BindAction }) {
  const { state, pending, formProps } = useFormAction(bind, { resetOnSuccess: false });
  const error = state && !state.ok && !state.stepUp ? errorText(state) : null;
  return (
    <form {...formProps} className="flex flex-col gap-1">
      <input type="hidden" name="id" value={id} />
      <div className="flex items-center gap-2">
        <input
          name="environments"
          required
          defaultValue={environments.join(", ")}
          aria-label={`Environments ${name} serves`}
          placeholder="staging"
          className="w-32 rounded-md border-0 px-2 py-1 text-xs ring-1 ring-inset ring-slate-300"
        />
        <button type="submit" disabled={pending} className="text-xs font-semibold text-brand-700 underline">
          Bind
        </button>
      </div>
      {error ? <span role="alert" className="text-xs text-red-700">{error}</span> : null}
      {state?.ok ? <span role="status" className="text-xs text-emerald-800">Bound.</span> : null}
    </form>
  );
}
