"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { createAgent, createAgentInput, setAgentSuspended, uuidSchema } from "@/lib/agents/agents";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, type ActionResult, formOf } from "@/lib/http/action";

export async function registerAgentAction(_prev: ActionResult<{ id: string }> | null, form: FormData) {
  form = formOf(form);
  return runAction("agents:write", createAgentInput, formToObject(form), async (actor, data) => {
    const agent = await createAgent(getDb(), actor, data);
    revalidatePath("/agents");
    return { id: agent.id };
  });
}

const statusInput = z.object({ id: uuidSchema, suspend: z.enum(["true", "false"]) });

export async function setAgentStatusAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("agents:write", statusInput, formToObject(form), async (actor, data) => {
    await setAgentSuspended(getDb(), actor, data.id, data.suspend === "true");
    revalidatePath(`/agents/${data.id}`);
    revalidatePath("/agents");
    return null;
  });
}
