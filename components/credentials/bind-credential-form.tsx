"use client";

import { useActionState } from "react";
import type { ActionResult } from "@/lib/http/action";

type BindAction = (prev: ActionResult<{ name: string }> | null, form: FormData) => Promise<ActionResult<{ name: string }>>;

/** Declares (or changes) the environments a credential serves; what it typed survives an error. */
export function BindCredentialForm({ id, name, environments, bind }: { id: string; name: string; environments: readonly string[]; bind: BindAction }) {
  const [state, action, pending] = useActionState(bind, null);
  const error = state && !state.ok ? [...Object.values(state.fieldErrors ?? {}).flat(), ...(state.fieldErrors ? [] : [state.message])].join(" ") : null;
  const typed = state && !state.ok ? state.values?.environments : undefined;
  return (
    <form action={action} className="flex flex-col gap-1">
      <input type="hidden" name="id" value={id} />
      <div className="flex items-center gap-2">
        <input
          name="environments"
          required
          defaultValue={typed ?? environments.join(", ")}
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
