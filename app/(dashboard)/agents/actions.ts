"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { createAgent, createAgentInput, setAgentSuspended } from "@/lib/agents/agents";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, type ActionResult, formOf } from "@/lib/http/action";
import { hiddenField, hiddenId } from "@/lib/http/hidden-fields";

export async function registerAgentAction(_prev: ActionResult<{ id: string }> | null, form: FormData) {
  form = formOf(form);
  return runAction("agents:write", createAgentInput, () => formToObject(form), async (actor, data) => {
    const agent = await createAgent(getDb(), actor, data);
    revalidatePath("/agents");
    return { id: agent.id };
  });
}

const statusInput = z.object({
  id: hiddenId("agent"),
  suspend: hiddenField(z.enum(["true", "false"]), "This form does not say whether to suspend or reactivate the agent (its suspend field must be true or false), so nothing was changed. Reload the page and try again."),
});

export async function setAgentStatusAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("agents:write", statusInput, () => formToObject(form), async (actor, data) => {
    await setAgentSuspended(getDb(), actor, data.id, data.suspend === "true");
    revalidatePath(`/agents/${data.id}`);
    revalidatePath("/agents");
    return null;
  });
}
