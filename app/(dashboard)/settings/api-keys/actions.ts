"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { createApiKey, createApiKeyInput, revokeApiKey } from "@/lib/apikeys";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, type ActionResult, formOf } from "@/lib/http/action";
import { hiddenId } from "@/lib/http/hidden-fields";

/** Returns the key itself: this response is the only time it is ever shown. */
export async function createApiKeyAction(_prev: ActionResult<{ name: string; key: string }> | null, form: FormData) {
  form = formOf(form);
  return runAction("users:write", createApiKeyInput, () => formToObject(form), async (actor, data) => {
    const { apiKey, key } = await createApiKey(getDb(), actor, data);
    revalidatePath("/settings/api-keys");
    return { name: apiKey.name, key };
  });
}

export async function revokeApiKeyAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("users:write", z.object({ id: hiddenId("API key") }), () => formToObject(form), async (actor, data) => {
    await revokeApiKey(getDb(), actor, data.id);
    revalidatePath("/settings/api-keys");
    return null;
  });
}
