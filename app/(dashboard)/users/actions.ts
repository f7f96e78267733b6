"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { endUserSessions } from "@/lib/auth/manage-sessions";
import { ROLES } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, type ActionResult, formOf } from "@/lib/http/action";
import { createUser, createUserInput, setUserDisabled, setUserRole } from "@/lib/users/users";
import { hiddenField, hiddenId } from "@/lib/http/hidden-fields";

export async function createUserAction(_prev: ActionResult<{ email: string; password: string | null }> | null, form: FormData) {
  form = formOf(form);
  return runAction("users:write", createUserInput, () => formToObject(form), async (actor, data) => {
    const { user, generatedPassword } = await createUser(getDb(), actor, data);
    revalidatePath("/users");
    return { email: user.email, password: generatedPassword };
  });
}

const updateInput = z.object({
  id: hiddenId("user"),
  role: z.enum(ROLES).optional(),
  disabled: hiddenField(z.enum(["true", "false"]), "This form does not say whether to disable or enable the user (its disabled field must be true or false), so nothing was changed. Reload the page and try again.").optional(),
  /** "true": end every dashboard session of the user. */
  signOut: hiddenField(z.literal("true"), "This form does not say to sign the user out (its signOut field must be true), so nothing was changed. Reload the page and try again.").optional(),
});

export async function updateUserAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("users:write", updateInput, () => formToObject(form), async (actor, data) => {
    if (data.role) await setUserRole(getDb(), actor, data.id, data.role);
    if (data.disabled) await setUserDisabled(getDb(), actor, data.id, data.disabled === "true");
    if (data.signOut) await endUserSessions(getDb(), actor, data.id);
    revalidatePath("/users");
    return null;
  });
}
