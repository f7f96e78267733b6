"use client";

import { useActionState } from "react";
import { Button } from "@/components/ui/button";
import type { ActionResult } from "@/lib/http/action";

type Action = (prev: ActionResult<null> | null, form: FormData) => Promise<ActionResult<null>>;

export function AgentStatusForm({ action, agentId, suspended }: { action: Action; agentId: string; suspended: boolean }) {
  const [state, formAction, pending] = useActionState(action, null);
  return (
    <form action={formAction} className="flex items-center gap-3">
      <input type="hidden" name="id" value={agentId} />
      <input type="hidden" name="suspend" value={suspended ? "false" : "true"} />
      <Button type="submit" variant={suspended ? "secondary" : "danger"} disabled={pending}>
        {suspended ? "Reactivate agent" : "Suspend agent"}
      </Button>
      {state && !state.ok ? (
        <span role="alert" className="text-sm text-red-700">
          {state.message}
        </span>
      ) : null}
    </form>
  );
}
