"use server";

import { AuthError, CredentialsSignin } from "next-auth";
import type { SignInState } from "@/components/auth/login-form";
import { passwordAttemptWait, throttledError } from "@/lib/auth/authenticate";
import { signIn } from "@/lib/auth/next-auth";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from "@/lib/db/errors";
import { actionClientAddress, assertSameOriginAction, formOf } from "@/lib/http/action";
import { isAppError } from "@/lib/errors/app-error";
import { safeReturnPath } from "@/lib/auth/return-to";

const FAILED = "Sign-in failed: the email or password is wrong, or the account is disabled.";

export async function signInWithPassword(_prev: SignInState, form: FormData): Promise<SignInState> {
  form = formOf(form);
  const email = String(form.get("email") ?? "").slice(0, 254);
  try {
    // Login CSRF: next-auth's own CSRF token is skipped for server-side signIn, so check here.
    await assertSameOriginAction();
    await signIn("password", {
      email,
      password: String(form.get("password") ?? ""),
      // Back to the page that asked for a sign-in (lib/auth/return-to.ts), else the Agents page.
      redirectTo: safeReturnPath(form.get("next")) ?? "/agents",
    });
    return {};
  } catch (error) {
    if (isAppError(error)) return { error: error.userMessage, email };
    if (error instanceof CredentialsSignin && error.code === "unavailable") return { error: `${DATABASE_UNAVAILABLE_MESSAGE} Signing in works again once it is back.`, email };
    if (isDatabaseUnavailable(error)) return { error: `${DATABASE_UNAVAILABLE_MESSAGE} Signing in works again once it is back.`, email };
    if (error instanceof CredentialsSignin && error.code === "throttled") {
      // Refused before any password check; say how long to wait.
      const wait = await passwordAttemptWait(getDb(), email, { address: await actionClientAddress(), throttle: loadAppConfig().signInThrottle });
      return { error: throttledError(Math.max(wait, 1)).userMessage, email, retryAfterSeconds: wait };
    }
    // One message for every other failure: nothing reveals whether the email, the password or
    // the account's state was the problem.
    if (error instanceof AuthError) return { error: FAILED, email };
    throw error; // NEXT_REDIRECT on success
  }
}

export async function signInWithOidc(form: FormData): Promise<void> {
  form = formOf(form);
  await assertSameOriginAction();
  await signIn("oidc", { redirectTo: safeReturnPath(form.get("next")) ?? "/agents" });
}
