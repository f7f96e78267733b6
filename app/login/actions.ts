"use server";

import { AuthError } from "next-auth";
import { signIn } from "@/lib/auth/next-auth";

export interface SignInState {
  error?: string;
  /** Echoed back so the form keeps the email after a failed attempt. */
  email?: string;
}

export async function signInWithPassword(_prev: SignInState, form: FormData): Promise<SignInState> {
  const email = String(form.get("email") ?? "").slice(0, 254);
  try {
    await signIn("password", {
      email,
      password: String(form.get("password") ?? ""),
      redirectTo: "/agents",
    });
    return {};
  } catch (error) {
    // One message for every failure: nothing reveals whether the email, the password or the
    // account's state was the problem.
    if (error instanceof AuthError) return { error: "Sign-in failed: the email or password is wrong, or the account is disabled.", email };
    throw error; // NEXT_REDIRECT on success
  }
}

export async function signInWithOidc(): Promise<void> {
  await signIn("oidc", { redirectTo: "/agents" });
}
