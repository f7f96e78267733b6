"use server";

import { signOut } from "@/lib/auth/next-auth";

/** Sign-out deletes the session row (events.signOut), so the cookie is dead even if replayed. */
export async function signOutAction(): Promise<void> {
  await signOut({ redirectTo: "/login" });
}
