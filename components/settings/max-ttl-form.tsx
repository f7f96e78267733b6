"use client";

import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;

export function MaxTtlForm({ action, current }: { action: Action; current: string }) {
  const { state, pending, formProps } = useFormAction(action, { resetOnSuccess: false });
  const errors = state && !state.ok ? [...(state.fieldErrors?.maxTtl ?? []), ...(state.fieldErrors?.form ?? [])] : undefined;
  return (
    <form {...formProps} className="flex items-end gap-3">
      <div className="w-40">
        <TextField label="Maximum task lifetime" name="maxTtl" defaultValue={current} errors={errors} />
      </div>
      <Button type="submit" variant="secondary" disabled={pending}>
        Save
      </Button>
      {state?.ok ? <span role="status" className="text-sm text-emerald-700">Saved.</span> : null}
    </form>
  );
}
