"use server";

import { redirect } from "next/navigation";
import { getDb } from "@/lib/db/client";
import { actionError, assertSameOriginAction, formToObject, type ActionResult, formOf } from "@/lib/http/action";
import { formErrorMap } from "@/lib/http/form-errors";
import { completeSetup, setupInput } from "@/lib/users/setup";
import { assertStorableText } from "@/lib/validation/text";

export async function completeSetupAction(token: string, _prev: ActionResult<null> | null, form: FormData): Promise<ActionResult<null>> {
  form = formOf(form);
  // Unauthenticated by design: the one-time token is the credential, checked inside completeSetup.
  let input: Record<string, string | undefined> = {};
  try {
    await assertSameOriginAction();
    input = formToObject(form);
    assertStorableText(input);
    const parsed = setupInput.safeParse(input, { error: formErrorMap });
    if (!parsed.success) throw parsed.error;
    await completeSetup(getDb(), token, parsed.data);
  } catch (error) {
    return actionError(error, { email: input.email, name: input.name });
  }
  redirect("/login?setup=done");
}
