"use client";

import { useState } from "react";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { useFormAction, formAlert } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Result = ActionResult<{ name: string; key: string }>;

export function CreateApiKeyForm({ action }: { action: (prev: Result | null, form: FormData) => Promise<Result> }) {
  const { state, pending, formProps } = useFormAction(action);
  const errors = state && !state.ok ? state.fieldErrors : undefined;
  const values = state && !state.ok ? state.values : undefined;
  return (
    <form {...formProps} className="mb-8 max-w-xl space-y-4 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
      <h2 className="font-semibold">Create an API key</h2>
      <TextField label="Name" name="name" required placeholder="ci-pipeline" defaultValue={values?.name} errors={errors?.name} hint="Who or what uses this key." />
      <div>
        <label htmlFor="role" className="block text-sm font-medium">
          Role
        </label>
        <select id="role" name="role" defaultValue={values?.role ?? "auditor"} className="mt-1 rounded-md border-0 px-3 py-2 text-sm ring-1 ring-inset ring-slate-300">
          <option value="admin">admin: everything</option>
          <option value="approver">approver: decide escalations, read</option>
          <option value="auditor">auditor: read only</option>
        </select>
        {errors?.role ? <p className="mt-1 text-sm text-red-700">{errors.role.join(" ")}</p> : null}
      </div>
      <TextField label="Expires in (days)" name="expiresInDays" inputMode="numeric" placeholder="never" defaultValue={values?.expiresInDays} errors={errors?.expiresInDays} hint="Leave empty for a key that lasts until revoked." />
      {state && !state.ok ? (
        <p role="alert" className="text-sm text-red-700">
          {formAlert(state, ["name", "role", "expiresInDays"])}
        </p>
      ) : null}
      {state?.ok ? <NewKey name={state.data.name} value={state.data.key} /> : null}
      <Button type="submit" disabled={pending}>
        {pending ? "Creating…" : "Create API key"}
      </Button>
    </form>
  );
}

function NewKey({ name, value }: { name: string; value: string }) {
  // As for a minted token (components/tasks/mint-token.tsx): "Copied" only once the clipboard
  // took it; where the browser refuses (no clipboard API over plain http), the key is selected.
  const [copied, setCopied] = useState<"no" | "copied" | "failed">("no");
  return (
    <div role="status" className="space-y-2 rounded-md bg-amber-50 px-3 py-2 text-sm">
      <p>
        Created {name}. Copy the key now: it is shown this once and cannot be retrieved again. Use it as <code>Authorization: Bearer …</code>.
      </p>
      <div className="flex items-center gap-2">
        <code data-testid="new-api-key" className="select-all break-all font-mono">
          {value}
        </code>
        <button
          type="button"
          className="rounded bg-white px-2 py-1 text-xs font-semibold ring-1 ring-inset ring-slate-300"
          onClick={async () => {
            try {
              await navigator.clipboard.writeText(value);
              setCopied("copied");
            } catch {
              const code = document.querySelector("[data-testid=new-api-key]");
              const selection = window.getSelection();
              if (code && selection) selection.selectAllChildren(code);
              setCopied("failed");
            }
          }}
        >
          {copied === "copied" ? "Copied" : "Copy"}
        </button>
      </div>
      {copied === "failed" ? (
        <p role="alert" className="text-red-700">
          The browser did not let the page copy it (the clipboard needs https, or permission). The key is selected: copy it with Ctrl+C (⌘C).
        </p>
      ) : null}
    </div>
  );
}
