"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { uuidSchema } from "@/lib/agents/agents";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, type ActionResult, formOf } from "@/lib/http/action";
import { stopSandbox } from "@/lib/sandboxes/sandboxes";

const idInput = z.object({ id: uuidSchema });

/** Stops a sandbox: workers refuse its address at once; its launcher tears the namespace down. */
export async function stopSandboxAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("tasks:write", idInput, formToObject(form), async (actor, { id }) => {
    await stopSandbox(getDb(), actor, id, "stopped from the dashboard");
    revalidatePath("/sandboxes");
    return null;
  });
}
