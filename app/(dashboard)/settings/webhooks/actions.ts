"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, type ActionResult, formOf } from "@/lib/http/action";
import { appKeys } from "@/lib/identity/app-keys";
import { createWebhook, deleteWebhook } from "@/lib/webhooks/webhooks";
import { hiddenId } from "@/lib/http/hidden-fields";

const createInput = z.object({ name: z.string().max(100).default(""), url: z.string().max(2000).default(""), format: z.enum(["json", "slack"]).default("json") });

/** Returns the secret this once; the page shows it and never again. */
export async function createWebhookAction(_prev: ActionResult<{ name: string; secret: string }> | null, form: FormData) {
  form = formOf(form);
  return runAction("settings:write", createInput, () => formToObject(form), async (actor, data) => {
    const db = getDb();
    const created = await createWebhook(db, actor, (await appKeys(db)).dashboardKey, loadAppConfig().webhooks, data);
    revalidatePath("/settings/webhooks");
    return { name: created.name, secret: created.signingSecret };
  });
}

export async function deleteWebhookAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("settings:write", z.object({ id: hiddenId("webhook") }), () => formToObject(form), async (actor, { id }) => {
    await deleteWebhook(getDb(), actor, id);
    revalidatePath("/settings/webhooks");
    return null;
  });
}
