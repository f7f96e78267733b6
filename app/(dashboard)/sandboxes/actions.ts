"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, type ActionResult, formOf } from "@/lib/http/action";
import { stopSandbox } from "@/lib/sandboxes/sandboxes";
import { hiddenId } from "@/lib/http/hidden-fields";

const idInput = z.object({ id: hiddenId("sandbox") });

/** Stops a sandbox: workers refuse its address at once; its launcher tears the namespace down. */
export async function stopSandboxAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("tasks:write", idInput, () => formToObject(form), async (actor, { id }) => {
    await stopSandbox(getDb(), actor, id, "stopped from the dashboard");
    revalidatePath("/sandboxes");
    return null;
  });
}
