"use client";

import { useRouter } from "next/navigation";
import { useEffect } from "react";
import { Button } from "@/components/ui/button";
import { FieldError, TextAreaField, TextField } from "@/components/ui/field";
import { useFormAction, formAlert } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

/** What the policy field holds until someone writes in it or picks a template. */
const STARTING_POLICY = "unlisted: deny\nrules: []\n";

type Action = (prev: ActionResult<{ id: string }> | null, form: FormData) => Promise<ActionResult<{ id: string }>>;

export interface TemplateOption {
  id: string;
  title: string;
  yaml: string;
}

export function CreateTaskForm({
  action,
  agents,
  defaultAgentId,
  templates,
  maxTtl,
}: {
  action: Action;
  agents: Array<{ id: string; name: string }>;
  defaultAgentId?: string;
  templates: TemplateOption[];
  maxTtl: string;
}) {
  const { state, pending, formProps } = useFormAction(action, { resetOnSuccess: false });
  const router = useRouter();
  useEffect(() => {
    if (state?.ok) router.push(`/tasks/${state.data.id}`);
  }, [state, router]);
  const errors = state && !state.ok ? state.fieldErrors : undefined;
  const values = state && !state.ok ? state.values : undefined;
  return (
    <form {...formProps} className="max-w-3xl space-y-4 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
      <div>
        <label htmlFor="agentId" className="block text-sm font-medium">
          Agent
        </label>
        <select id="agentId" name="agentId" defaultValue={values?.agentId ?? defaultAgentId} required className="mt-1 rounded-md border-0 px-3 py-2 text-sm ring-1 ring-inset ring-slate-300">
          {agents.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name}
            </option>
          ))}
        </select>
        <FieldError id="agentId-error" errors={errors?.agentId} />
      </div>
      <TextField label="Purpose" name="purpose" required placeholder="Check the staging deploy credentials" defaultValue={values?.purpose} errors={errors?.purpose} />
      <TextField
        label="Scope"
        name="scope"
        placeholder="railway:staging:read github:*:write"
        defaultValue={values?.scope}
        errors={errors?.scope}
        hint="What the task may touch at most, whatever its policy: service:environment:effect entries (effects read < write < destructive < irreversible; * for any service or environment), or none. Fixed for the task's life. Left empty: exactly what the policy below reaches."
      />
      <TextField label="Time to live" name="ttl" defaultValue={values?.ttl ?? "15m"} errors={errors?.ttl} hint={`e.g. 15m, 2h; at most ${maxTtl}.`} />
      <TextAreaField
        label="Allowlist policy (YAML)"
        name="policyYaml"
        rows={12}
        className="mt-1 block w-full rounded-md border-0 px-3 py-2 font-mono text-xs shadow-sm ring-1 ring-inset ring-slate-300"
        placeholder={"unlisted: deny\nrules:\n  - service: github\n    resources: [\"acme/app\"]\n    effects: [read]"}
        defaultValue={values?.policyYaml ?? STARTING_POLICY}
        errors={errors?.policyYaml}
      />
      {templates.length > 0 ? (
        <details className="text-sm">
          <summary className="cursor-pointer text-slate-600">Start from a template</summary>
          <ul className="mt-2 space-y-1">
            {templates.map((t) => (
              <li key={t.id}>
                <button
                  type="button"
                  className="text-brand-700 underline"
                  onClick={() => {
                    const area = document.getElementById("policyYaml") as HTMLTextAreaElement | null;
                    if (!area) return;
                    // A policy the person wrote is not thrown away without asking (the starting text
                    // and an untouched template are replaced at once).
                    const untouched = area.value.trim() === "" || area.value === STARTING_POLICY || templates.some((x) => x.yaml === area.value);
                    if (!untouched && !window.confirm(`Replace the policy you wrote with the template "${t.title}"?`)) return;
                    area.value = t.yaml;
                  }}
                >
                  {t.title}
                </button>
              </li>
            ))}
          </ul>
        </details>
      ) : null}
      {state && !state.ok ? (
        <p role="alert" className="text-sm text-red-700">
          {formAlert(state, ["agentId", "purpose", "scope", "ttl", "policyYaml"])}
        </p>
      ) : null}
      <Button type="submit" disabled={pending}>
        {pending ? "Creating…" : "Create task"}
      </Button>
    </form>
  );
}
