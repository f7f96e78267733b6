"use client";

import { Button } from "@/components/ui/button";
import { formAlert, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action<T> = (prev: ActionResult<T> | null, form: FormData) => Promise<ActionResult<T>>;

/** A YAML document edited in a textarea and saved by a server action, with its errors inline. */
export function YamlForm<T>({ action, name, label, initial, rows = 10, submit, placeholder, testId, sendsBase = false }: { action: Action<T>; name: string; label: string; initial: string; rows?: number; submit: string; placeholder?: string; testId?: string; /** Sends the text the editor started from as `base`: the action refuses a save over a newer one. */ sendsBase?: boolean }) {
  const { state, pending, formProps } = useFormAction(action);
  const errors = state && !state.ok ? (state.fieldErrors?.[name] ?? []) : [];
  return (
    <form {...formProps} className="space-y-2" data-testid={testId}>
      {sendsBase ? <input type="hidden" name="base" value={initial} /> : null}
      <label htmlFor={name} className="block text-sm font-medium">
        {label}
      </label>
      <textarea
        id={name}
        name={name}
        defaultValue={state && !state.ok ? (state.values?.[name] ?? initial) : initial}
        rows={rows}
        spellCheck={false}
        placeholder={placeholder}
        aria-invalid={errors.length ? true : undefined}
        className="block w-full rounded-md border-0 p-3 font-mono text-xs ring-1 ring-inset ring-slate-300 aria-[invalid=true]:ring-red-500"
      />
      {errors.length ? (
        <ul role="alert" className="text-sm text-red-700">
          {errors.map((e) => (
            <li key={e}>{e}</li>
          ))}
        </ul>
      ) : state && !state.ok ? (
        <p role="alert" className="text-sm text-red-700">
          {formAlert(state, [name])}
        </p>
      ) : null}
      {state?.ok ? (
        <p role="status" className="text-sm text-emerald-700">
          Saved.
        </p>
      ) : null}
      <Button type="submit" variant="secondary" disabled={pending}>
        {submit}
      </Button>
    </form>
  );
}
