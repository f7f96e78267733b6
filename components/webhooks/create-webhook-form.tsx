"use client";

import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<{ name: string; secret: string }> | null, form: FormData) => Promise<ActionResult<{ name: string; secret: string }>>;

/**
 * Adds a webhook; the signing secret is shown once, here, right after. A refused submission keeps
 * what was typed. `allowedNetworks`: the non-public networks the operator allows receivers on.
 */
export function CreateWebhookForm({ action, allowedNetworks }: { action: Action; allowedNetworks: string[] }) {
  const { state, pending, formProps } = useFormAction(action);
  const values = state && !state.ok ? state.values : undefined;
  const where =
    allowedNetworks.length > 0
      ? `Receivers on public addresses, or in ${allowedNetworks.join(", ")} (allowed by the operator with BULKHEAD_WEBHOOK_ALLOWED_NETWORKS).`
      : "Receivers on public addresses only; the operator can allow private networks with BULKHEAD_WEBHOOK_ALLOWED_NETWORKS.";
  return (
    <form {...formProps} className="mb-6 max-w-3xl space-y-3 rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200">
      <h2 className="font-semibold">Add a webhook</h2>
      <TextField label="Name" name="name" defaultValue={values?.name} errors={state && !state.ok ? state.fieldErrors?.name : undefined} />
      <TextField label="URL" name="url" placeholder="https://hooks.example.com/..." defaultValue={values?.url} hint={where} errors={state && !state.ok ? state.fieldErrors?.url : undefined} />
      <label className="block text-sm">
        Format{" "}
        <select name="format" defaultValue={values?.format ?? "json"} className="rounded-md border border-slate-300 px-2 py-1">
          <option value="json">Signed JSON</option>
          <option value="slack">Slack incoming webhook</option>
        </select>
      </label>
      <Button type="submit" variant="secondary" disabled={pending}>
        Add webhook
      </Button>
      {state?.ok ? (
        <div role="status" className="rounded-md bg-amber-50 p-3 text-sm">
          <p className="font-semibold">Secret for {state.data.name}: copy it now, it is not shown again.</p>
          <code className="break-all" data-testid="webhook-secret">
            {state.data.secret}
          </code>
          <p className="mt-1">Verify each delivery: HMAC-SHA256 of &quot;&lt;t&gt;.&lt;body&gt;&quot; with this secret equals v1 in the Bulkhead-Signature header.</p>
        </div>
      ) : null}
      {state && !state.ok && !state.fieldErrors ? (
        <p role="alert" className="text-sm text-red-700">
          {errorText(state)}
        </p>
      ) : null}
    </form>
  );
}
