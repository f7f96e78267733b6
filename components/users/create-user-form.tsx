"use client";

import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { useFormAction, formAlert } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Result = ActionResult<{ email: string; password: string | null }>;

export function CreateUserForm({ action }: { action: (prev: Result | null, form: FormData) => Promise<Result> }) {
  const { state, pending, formProps } = useFormAction(action);
  const errors = state && !state.ok ? state.fieldErrors : undefined;
  const values = state && !state.ok ? state.values : undefined;
  return (
    <form {...formProps} className="mb-8 max-w-xl space-y-4 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
      <h2 className="font-semibold">Add a user</h2>
      <TextField label="Email" name="email" type="email" required defaultValue={values?.email} errors={errors?.email} />
      <div>
        <label htmlFor="role" className="block text-sm font-medium">
          Role
        </label>
        <select id="role" name="role" defaultValue={values?.role ?? "auditor"} className="mt-1 rounded-md border-0 px-3 py-2 text-sm ring-1 ring-inset ring-slate-300">
          <option value="admin">admin: everything</option>
          <option value="approver">approver: decide escalations, read audit</option>
          <option value="auditor">auditor: read only</option>
        </select>
      </div>
      <p className="text-xs text-slate-500">A password is generated and shown once. Users who sign in with SSO use their identity provider instead.</p>
      {state && !state.ok ? <p role="alert" className="text-sm text-red-700">{formAlert(state, ["email"])}</p> : null}
      {state?.ok && state.data.password ? (
        <p role="status" className="rounded-md bg-amber-50 px-3 py-2 text-sm">
          Created {state.data.email}. Password (shown once): <code className="select-all font-mono">{state.data.password}</code>
        </p>
      ) : null}
      <Button type="submit" disabled={pending}>
        Add user
      </Button>
    </form>
  );
}
