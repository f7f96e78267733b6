"use server";

import { redirect } from "next/navigation";
import { getDb } from "@/lib/db/client";
import type { ActionResult } from "@/lib/http/action";
import { formToObject } from "@/lib/http/action";
import { completeSetup } from "@/lib/users/setup";
import { ZodError } from "zod";
import { isAppError } from "@/lib/errors/app-error";

export async function completeSetupAction(token: string, _prev: ActionResult<null> | null, form: FormData): Promise<ActionResult<null>> {
  // Unauthenticated by design: the one-time token is the credential, checked inside completeSetup.
  const input = formToObject(form);
  const values = { email: input.email, name: input.name };
  try {
    await completeSetup(getDb(), token, input as never);
  } catch (error) {
    if (error instanceof ZodError) {
      const fieldErrors: Record<string, string[]> = {};
      for (const i of error.issues) (fieldErrors[i.path.join(".")] ??= []).push(i.message);
      return { ok: false, message: "Please correct the highlighted fields.", fieldErrors, values };
    }
    if (isAppError(error)) return { ok: false, message: error.userMessage, values };
    throw error;
  }
  redirect("/login?setup=done");
}
