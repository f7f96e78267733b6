"use server";

import { z } from "zod";
import { requireActor } from "@/lib/auth/current";
import { signIn, signOut } from "@/lib/auth/next-auth";
import { assertSameOriginAction, formOf } from "@/lib/http/action";

/** Sign-out deletes the session row (events.signOut), so the cookie is dead even if replayed. */
export async function signOutAction(): Promise<void> {
  // A cross-site page must not be able to sign people out either.
  await assertSameOriginAction();
  await signOut({ redirectTo: "/login" });
}

// Step-up with the password is the API's (POST /api/v1/session/reauthenticate), which the dialog
// calls: it rotates the session's token and sets the new cookie, which a server action cannot do
// without Next.js rendering the page again with the old one (components/auth/step-up.tsx).

const returnTo = z.string().regex(/^\/(?!\/)[^\s\\]*$/).max(500).catch("/agents");

/**
 * Step-up through the identity provider: a new sign-in there (prompt=login, max_age=0) opens a
 * fresh session, which deletes this one's row in the same transaction (lib/auth/auth-config.ts).
 */
export async function reauthenticateWithOidcAction(form: FormData): Promise<void> {
  form = formOf(form);
  await assertSameOriginAction();
  await requireActor("read");
  await signIn("oidc", { redirectTo: returnTo.parse(form.get("returnTo")) }, { prompt: "login", max_age: "0" });
}
