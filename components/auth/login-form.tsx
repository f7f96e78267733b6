"use client";

import { useActionState } from "react";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";

/** What the sign-in action answers with; the form shows it. */
export interface SignInState {
  error?: string;
  /** Echoed back so the form keeps the email after a failed attempt. */
  email?: string;
  /** Set when sign-in is throttled: how long to wait. */
  retryAfterSeconds?: number;
}

/** The password form. The page passes the server action in: components never import from app/. */
export function LoginForm({ signIn, next }: { signIn: (prev: SignInState, form: FormData) => Promise<SignInState>; next?: string }) {
  const [state, action, pending] = useActionState<SignInState, FormData>(signIn, {});
  return (
    <form action={action} className="space-y-4">
      {next ? <input type="hidden" name="next" value={next} /> : null}
      <TextField label="Email" name="email" type="email" autoComplete="username" required defaultValue={state.email} />
      <TextField label="Password" name="password" type="password" autoComplete="current-password" required />
      {state.error ? (
        <p role="alert" className="rounded-md bg-red-50 px-3 py-2 text-sm text-red-800">
          {state.error}
        </p>
      ) : null}
      <Button type="submit" className="w-full" disabled={pending}>
        {pending ? "Signing in…" : "Sign in"}
      </Button>
    </form>
  );
}
