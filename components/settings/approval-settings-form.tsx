"use client";

import { Button } from "@/components/ui/button";
import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;
const EFFECTS = ["write", "destructive", "irreversible"] as const;

/** Four-eyes and the number of distinct approvers per effect. Lowering either asks for step-up. */
export function ApprovalSettingsForm({ action, fourEyes, required }: { action: Action; fourEyes: boolean; required: Partial<Record<string, number>> }) {
  const { state, pending, formProps } = useFormAction(action, { resetOnSuccess: false });
  return (
    <form {...formProps} className="space-y-3" data-testid="approval-settings">
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" name="fourEyes" defaultChecked={fourEyes} />
        Four-eyes: the agent&apos;s owner and the task&apos;s creator cannot approve its requests alone
      </label>
      <fieldset className="flex flex-wrap gap-4">
        <legend className="mb-1 text-sm font-medium">Distinct approvers needed, by the request&apos;s most severe effect</legend>
        {EFFECTS.map((e) => (
          <label key={e} className="text-sm">
            {e}{" "}
            <input type="number" name={e} min={1} max={10} defaultValue={required[e] ?? 1} className="w-16 rounded-md border border-slate-300 px-2 py-1" aria-label={`Approvers for ${e}`} />
          </label>
        ))}
      </fieldset>
      <div className="flex items-center gap-3">
        <Button type="submit" variant="secondary" disabled={pending}>
          Save approval rules
        </Button>
        {state?.ok ? <span role="status" className="text-sm text-emerald-700">Saved.</span> : null}
        {state && !state.ok ? (
          <span role="alert" className="text-sm text-red-700">
            {errorText(state)}
          </span>
        ) : null}
      </div>
    </form>
  );
}
