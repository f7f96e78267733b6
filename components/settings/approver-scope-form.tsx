"use client";

import { Button } from "@/components/ui/button";
import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;

/** Limits one approver to some agents and services (nothing selected: answers for all). */
export function ApproverScopeForm({
  action,
  users,
  agents,
}: {
  action: Action;
  users: Array<{ id: string; email: string; scope: string }>;
  agents: Array<{ id: string; name: string }>;
}) {
  const { state, pending, formProps } = useFormAction(action, { resetOnSuccess: false });
  return (
    <form {...formProps} className="space-y-3" data-testid="approver-scope">
      <ul className="text-sm">
        {users.map((u) => (
          <li key={u.id}>
            <span className="font-medium">{u.email}</span>: {u.scope}
          </li>
        ))}
      </ul>
      <label className="block text-sm">
        Approver{" "}
        <select name="userId" className="rounded-md border border-slate-300 px-2 py-1">
          {users.map((u) => (
            <option key={u.id} value={u.id}>
              {u.email}
            </option>
          ))}
        </select>
      </label>
      <label className="block text-sm">
        Agents they answer for{" "}
        <select name="agents" multiple className="block min-w-64 rounded-md border border-slate-300 px-2 py-1">
          {agents.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name}
            </option>
          ))}
        </select>
      </label>
      <label className="block text-sm">
        Services they answer for (ids, comma-separated){" "}
        <input name="services" className="rounded-md border border-slate-300 px-2 py-1" placeholder="railway, github" />
      </label>
      <div className="flex items-center gap-3">
        <Button type="submit" variant="secondary" disabled={pending}>
          Save approver scope
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
