"use client";

import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { useFormAction, formAlert } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Result = ActionResult<{ name: string }>;

/**
 * After a rejected submission every field keeps what was typed (the form is not reset, and the
 * scheme select keeps its choice) except the secret, which is emptied: it is typed again and is
 * never part of a result. Adding a credential needs step-up; the dialog resubmits.
 */
export function AddCredentialForm({ action }: { action: (prev: Result | null, form: FormData) => Promise<Result> }) {
  const { state, pending, formProps } = useFormAction(action, { clearOnError: ["secret"] });
  const errors = state && !state.ok ? state.fieldErrors : undefined;
  const values = state && !state.ok ? state.values : undefined;
  return (
    <form {...formProps} className="mb-8 max-w-xl space-y-4 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
      <h2 className="font-semibold">Add a credential</h2>
      <TextField label="Name" name="name" required placeholder="github-deploy" defaultValue={values?.name} errors={errors?.name} />
      <div className="grid grid-cols-1 gap-4 sm:grid-cols-4">
        <div>
          <label htmlFor="scheme" className="block text-sm font-medium">
            Scheme
          </label>
          <select id="scheme" name="scheme" defaultValue={values?.scheme ?? "https"} className="mt-1 block w-full rounded-md border-0 px-3 py-2 text-sm ring-1 ring-inset ring-slate-300">
            <option value="https">https</option>
            <option value="http">http</option>
          </select>
        </div>
        <div className="sm:col-span-2">
          <TextField label="Host" name="host" required placeholder="api.github.com" defaultValue={values?.host} errors={errors?.host} />
        </div>
        <TextField label="Port" name="port" inputMode="numeric" placeholder="default" defaultValue={values?.port} errors={errors?.port} />
      </div>
      <div className="grid grid-cols-1 gap-4 sm:grid-cols-2">
        <TextField label="Service" name="serviceId" placeholder="from the host" defaultValue={values?.serviceId} errors={errors?.serviceId} hint="The service it serves (railway, github, …). Empty: the service its host belongs to." />
        <TextField
          label="Environments"
          name="environments"
          required
          placeholder="staging"
          defaultValue={values?.environments}
          errors={errors?.environments}
          hint="Injected only for actions in these environments (e.g. staging, or staging, development); * for every environment of its service."
        />
      </div>
      <TextField
        label="Header template"
        name="headerTemplate"
        required
        defaultValue={values?.headerTemplate ?? "Authorization: Bearer {secret}"}
        errors={errors?.headerTemplate}
        hint="Exactly one {secret} (inserted as is) or {secret:base64}. Basic auth: Authorization: Basic {secret:base64} with the secret user:password."
      />
      <TextField label="Secret" name="secret" type="password" required autoComplete="off" errors={errors?.secret} hint="Stored encrypted. It can be replaced, never shown again." />
      {state && !state.ok ? (
        <p role="alert" className="text-sm text-red-700">
          {formAlert(state, ["name", "host", "port", "serviceId", "environments", "headerTemplate", "secret"])}
        </p>
      ) : null}
      {state?.ok ? (
        <p role="status" className="text-sm text-emerald-800">
          Added {state.data.name}.
        </p>
      ) : null}
      <Button type="submit" disabled={pending}>
        {pending ? "Adding…" : "Add credential"}
      </Button>
    </form>
  );
}
