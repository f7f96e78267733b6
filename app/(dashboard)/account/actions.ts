"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { endOtherSessions, endOwnSession } from "@/lib/auth/manage-sessions";
import { AppError } from "@/lib/errors/app-error";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, type ActionResult, formOf } from "@/lib/http/action";
import { hiddenId } from "@/lib/http/hidden-fields";

/** Ends one of the signed-in person's own sessions (another person's id is "not found"). */
export async function endSessionAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("read", z.object({ id: hiddenId("session") }), () => formToObject(form), async (actor, data) => {
    await endOwnSession(getDb(), actor, data.id);
    revalidatePath("/account");
    return null;
  });
}

/**
 * "Sign out everywhere else". The form names the session it keeps (the page's current one): a
 * page rendered for another session, or a request without the field, ends nothing.
 */
export async function endOtherSessionsAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("read", z.object({ keep: hiddenId("session") }), () => formToObject(form), async (actor, data) => {
    if (actor.kind !== "user" || actor.sessionId !== data.keep) {
      throw new AppError("CONFLICT", "The page was not shown to this session.", { userMessage: "This page is out of date: reload it and try again." });
    }
    await endOtherSessions(getDb(), actor);
    revalidatePath("/account");
    return null;
  });
}
