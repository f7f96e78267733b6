"use client";

import { Button } from "@/components/ui/button";
import { errorText, useFormAction } from "@/components/ui/use-form-action";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;

export const SUSPEND_CONFIRMATION = "Suspend this agent? Its active tasks are revoked at once and their tokens stop working; reactivating the agent does not bring them back.";

export function AgentStatusForm({ action, agentId, suspended }: { action: Action; agentId: string; suspended: boolean }) {
  const { state, pending, formProps } = useFormAction(action, { resetOnSuccess: false });
  return (
    <form
      {...formProps}
      className="flex items-center gap-3"
      onSubmit={(e) => {
        // Suspending cannot be undone for the agent's tasks: asked first, as ending one task is.
        if (!suspended && !window.confirm(SUSPEND_CONFIRMATION)) {
          e.preventDefault();
          return;
        }
        formProps.onSubmit(e);
      }}
    >
      <input type="hidden" name="id" value={agentId} />
      <input type="hidden" name="suspend" value={suspended ? "false" : "true"} />
      <Button type="submit" variant={suspended ? "secondary" : "danger"} disabled={pending}>
        {suspended ? "Reactivate agent" : "Suspend agent"}
      </Button>
      {state && !state.ok ? (
        <span role="alert" className="text-sm text-red-700">
          {errorText(state)}
        </span>
      ) : null}
    </form>
  );
}
