"use client";

import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { useFormAction, formAlert } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

export function SetupForm({ action }: { action: (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>> }) {
  const { state, pending, formProps } = useFormAction(action, { clearOnError: ["password", "confirm"] });
  const errors = state && !state.ok ? state.fieldErrors : undefined;
  const values = state && !state.ok ? state.values : undefined;
  return (
    <form {...formProps} className="space-y-4">
      <TextField label="Your email" name="email" type="email" required defaultValue={values?.email} errors={errors?.email} />
      <TextField label="Name (optional)" name="name" defaultValue={values?.name} errors={errors?.name} />
      <TextField label="Password" name="password" type="password" autoComplete="new-password" required minLength={12} errors={errors?.password} hint="At least 12 characters." />
      <TextField label="Repeat password" name="confirm" type="password" autoComplete="new-password" required errors={errors?.confirm} />
      {state && !state.ok ? <p role="alert" className="text-sm text-red-700">{formAlert(state, ["email", "name", "password", "confirm"])}</p> : null}
      <Button type="submit" className="w-full" disabled={pending}>
        Create the first admin
      </Button>
    </form>
  );
}
