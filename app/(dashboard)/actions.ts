"use server";

import { z } from "zod";
import { requireActor } from "@/lib/auth/current";
import { signIn, signOut } from "@/lib/auth/next-auth";
import { reauthenticateWithPassword } from "@/lib/auth/step-up";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { actionClientAddress, actionError, assertSameOriginAction, type ActionResult, formOf } from "@/lib/http/action";

/** Sign-out deletes the session row (events.signOut), so the cookie is dead even if replayed. */
export async function signOutAction(): Promise<void> {
  // A cross-site page must not be able to sign people out either.
  await assertSameOriginAction();
  await signOut({ redirectTo: "/login" });
}

/** Step-up with the password: the session counts as freshly authenticated for a few minutes. */
export async function reauthenticateAction(_prev: ActionResult<{ authenticatedAt: number }> | null, form: FormData): Promise<ActionResult<{ authenticatedAt: number }>> {
  form = formOf(form);
  try {
    await assertSameOriginAction();
    const actor = await requireActor("read");
    const { authenticatedAt } = await reauthenticateWithPassword(getDb(), actor, form.get("password"), {
      address: await actionClientAddress(),
      throttle: loadAppConfig().signInThrottle,
    });
    return { ok: true, data: { authenticatedAt: authenticatedAt.getTime() } };
  } catch (error) {
    return actionError(error, {});
  }
}

const returnTo = z.string().regex(/^\/(?!\/)[^\s\\]*$/).max(500).catch("/agents");

/** Step-up through the identity provider: a new sign-in there (prompt=login, max_age=0) opens a fresh session. */
export async function reauthenticateWithOidcAction(form: FormData): Promise<void> {
  form = formOf(form);
  await assertSameOriginAction();
  await requireActor("read");
  await signIn("oidc", { redirectTo: returnTo.parse(form.get("returnTo")) }, { prompt: "login", max_age: "0" });
}
