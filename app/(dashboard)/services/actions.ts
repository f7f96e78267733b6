"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { formOf, formText, formToObject, runAction, type ActionResult } from "@/lib/http/action";
import { addCredential, addCredentialInput, bindCredential, bindCredentialInput, deleteCredential, rotateCredential } from "@/lib/vault";
import { appKeys } from "@/lib/identity/app-keys";
import { secretSchema } from "@/lib/vault/schemas";
import { setInventoryYaml } from "@/lib/services/inventory";
import { deleteCustomService, saveCustomService } from "@/lib/services/services";
import { hiddenField, hiddenId } from "@/lib/http/hidden-fields";

// Results carry names only: a secret is never sent back to the browser, not even on error.

export async function addCredentialAction(_prev: ActionResult<{ name: string }> | null, form: FormData) {
  form = formOf(form);
  const result = await runAction("credentials:write", addCredentialInput, () => formToObject(form), async (actor, data) => {
    const db = getDb();
    const credential = await addCredential(db, actor, (await appKeys(db)).workerRecipient, data);
    revalidatePath("/services");
    return { name: credential.name };
  });
  // A rejected template is often one with the token pasted in place of {secret}: do not send it back.
  if (!result.ok && result.fieldErrors?.headerTemplate && result.values) delete result.values.headerTemplate;
  return result;
}

const rotateInput = z.object({ id: hiddenId("credential"), secret: secretSchema });

export async function rotateCredentialAction(_prev: ActionResult<{ name: string }> | null, form: FormData) {
  form = formOf(form);
  return runAction("credentials:write", rotateInput, () => formToObject(form), async (actor, data) => {
    const db = getDb();
    const credential = await rotateCredential(db, actor, (await appKeys(db)).workerRecipient, data.id, data.secret, loadAppConfig().retiredSecrets);
    revalidatePath("/services");
    return { name: credential.name };
  });
}

const bindInput = bindCredentialInput.extend({ id: hiddenId("credential") });

export async function bindCredentialAction(_prev: ActionResult<{ name: string }> | null, form: FormData) {
  form = formOf(form);
  return runAction("credentials:write", bindInput, () => formToObject(form), async (actor, { id, ...binding }) => {
    const credential = await bindCredential(getDb(), actor, id, binding);
    revalidatePath("/services");
    return { name: credential.name };
  });
}

export async function deleteCredentialAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("credentials:write", z.object({ id: hiddenId("credential") }), () => formToObject(form), async (actor, data) => {
    await deleteCredential(getDb(), actor, data.id, loadAppConfig().retiredSecrets);
    revalidatePath("/services");
    return null;
  });
}

const descriptorInput = z.object({ descriptorYaml: z.string().max(200_000) });

export async function saveServiceAction(_prev: ActionResult<{ name: string }> | null, form: FormData) {
  form = formOf(form);
  return runAction("settings:write", descriptorInput, () => ({ descriptorYaml: formText(form, "descriptorYaml") }), async (actor, data) => {
    const result = await saveCustomService(getDb(), actor, data.descriptorYaml);
    revalidatePath("/services");
    return result;
  });
}

export async function deleteServiceAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("settings:write", z.object({ name: hiddenField(z.string().min(1).max(100), "This form does not name a service (its name is missing or too long), so nothing was deleted. Reload the page and try again.") }), () => ({ name: formText(form, "name") }), async (actor, data) => {
    await deleteCustomService(getDb(), actor, data.name);
    revalidatePath("/services");
    return null;
  });
}

export async function saveInventoryAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("settings:write", z.object({ inventoryYaml: z.string().max(200_000), base: z.string().max(200_000).optional() }), () => ({ inventoryYaml: formText(form, "inventoryYaml"), base: formText(form, "base") }), async (actor, data) => {
    await setInventoryYaml(getDb(), actor, data.inventoryYaml, data.base);
    revalidatePath("/services");
    return null;
  });
}
