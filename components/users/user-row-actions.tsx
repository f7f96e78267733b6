"use client";

import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;

/** Role change (step-up: the dialog resubmits), ending every session, and disable/enable for one user. */
export function UserRowActions({ action, id, role, disabled }: { action: Action; id: string; role: string; disabled: boolean }) {
  const roleForm = useFormAction(action, { resetOnSuccess: false });
  const statusForm = useFormAction(action, { resetOnSuccess: false });
  const signOutForm = useFormAction(action, { resetOnSuccess: false });
  const pending = roleForm.pending || statusForm.pending || signOutForm.pending;
  const error = errorText(roleForm.state) ?? errorText(statusForm.state) ?? errorText(signOutForm.state);
  const signedOut = signOutForm.state?.ok === true;
  return (
    <div className="flex flex-wrap items-center gap-2">
      <form {...roleForm.formProps} className="flex items-center gap-2">
        <input type="hidden" name="id" value={id} />
        <select name="role" defaultValue={role} aria-label="Role" className="rounded-md border-0 px-2 py-1 text-xs ring-1 ring-inset ring-slate-300">
          <option value="admin">admin</option>
          <option value="approver">approver</option>
          <option value="auditor">auditor</option>
        </select>
        <button type="submit" disabled={pending} className="text-xs font-semibold text-brand-700 underline">
          Change role
        </button>
      </form>
      {disabled ? null : (
        <form {...signOutForm.formProps}>
          <input type="hidden" name="id" value={id} />
          <input type="hidden" name="signOut" value="true" />
          <button type="submit" disabled={pending} className="text-xs font-semibold text-brand-700 underline">
            Sign out everywhere
          </button>
          {signedOut ? (
            <span role="status" className="ml-1 text-xs text-green-700">
              Signed out.
            </span>
          ) : null}
        </form>
      )}
      <form {...statusForm.formProps}>
        <input type="hidden" name="id" value={id} />
        <input type="hidden" name="disabled" value={disabled ? "false" : "true"} />
        <button type="submit" disabled={pending} className="text-xs font-semibold text-red-700 underline">
          {disabled ? "Enable" : "Disable"}
        </button>
      </form>
      {error ? <span role="alert" className="text-xs text-red-700">{error}</span> : null}
    </div>
  );
}
