"use client";

import { useRouter } from "next/navigation";
import { useEffect } from "react";
import { Button } from "@/components/ui/button";
import { TextAreaField, TextField } from "@/components/ui/field";
import { useFormAction, formAlert } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<{ id: string }> | null, form: FormData) => Promise<ActionResult<{ id: string }>>;

export function RegisterAgentForm({ action, defaultOwner }: { action: Action; defaultOwner: string }) {
  const { state, pending, formProps } = useFormAction(action, { resetOnSuccess: false });
  const router = useRouter();
  useEffect(() => {
    if (state?.ok) router.push(`/agents/${state.data.id}`);
  }, [state, router]);
  const errors = state && !state.ok ? state.fieldErrors : undefined;
  const values = state && !state.ok ? state.values : undefined;
  return (
    <form {...formProps} className="max-w-xl space-y-4 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
      <TextField label="Name" name="name" required placeholder="deploy-bot" defaultValue={values?.name} errors={errors?.name} hint="Letters, digits, dot, dash, underscore." />
      <TextAreaField label="Description" name="description" rows={3} placeholder="What this agent does and where it runs" defaultValue={values?.description} errors={errors?.description} />
      <TextField label="Owner email" name="ownerEmail" type="email" defaultValue={values?.ownerEmail ?? defaultOwner} errors={errors?.ownerEmail} hint="The person responsible for this agent." />
      {state && !state.ok ? (
        <p role="alert" className="text-sm text-red-700">
          {formAlert(state, ["name", "description", "ownerEmail"])}
        </p>
      ) : null}
      <Button type="submit" disabled={pending}>
        {pending ? "Registering…" : "Register agent"}
      </Button>
    </form>
  );
}
