"use client";

import { createContext, useCallback, useEffect, useMemo, useRef, useState, type FormEvent, type ReactNode } from "react";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";

type Method = "password" | "oidc";

/**
 * Confirms the password with the API (POST /api/v1/session/reauthenticate), not a server action:
 * re-authentication gives the session a new token and sets its cookie (lib/auth/step-up.ts), and
 * a server action that sets a cookie has Next.js render the page again within the same request,
 * still with the old cookie, which no longer signs in. A route handler's answer just sets it.
 */
async function reauthenticate(password: string): Promise<string | null> {
  try {
    const res = await fetch("/api/v1/session/reauthenticate", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ password }) });
    if (res.ok) return null;
    const body = (await res.json().catch(() => null)) as { message?: unknown } | null;
    return typeof body?.message === "string" ? body.message : "Your password could not be checked. Try again.";
  } catch {
    return "The dashboard could not be reached. Try again.";
  }
}

export interface StepUp {
  /** Opens the re-authentication dialog; resolves true once the person has confirmed who they are. */
  request(method: Method): Promise<boolean>;
}

export const StepUpContext = createContext<StepUp | null>(null);

/**
 * The re-authentication dialog behind every dangerous change. A form whose action answers
 * `stepUp` (lib/auth/step-up.ts) asks this provider; the person confirms their password (or
 * goes to the identity provider), and the form's action runs again with what was submitted.
 */
export function StepUpProvider({
  children,
  reauthenticateWithOidc,
  oidcName,
}: {
  children: ReactNode;
  reauthenticateWithOidc: (form: FormData) => Promise<void>;
  oidcName: string | null;
}) {
  const [open, setOpen] = useState<{ method: Method; attempt: number } | null>(null);
  const resolver = useRef<((ok: boolean) => void) | null>(null);
  const finish = useCallback((ok: boolean) => {
    resolver.current?.(ok);
    resolver.current = null;
    setOpen(null);
  }, []);
  const request = useCallback(
    (method: Method) =>
      new Promise<boolean>((resolve) => {
        resolver.current?.(false);
        resolver.current = resolve;
        setOpen((previous) => ({ method, attempt: (previous?.attempt ?? 0) + 1 }));
      }),
    [],
  );
  const value = useMemo(() => ({ request }), [request]);
  return (
    <StepUpContext.Provider value={value}>
      {children}
      {open ? (
        <StepUpDialog
          key={open.attempt}
          method={open.method}
          reauthenticateWithOidc={reauthenticateWithOidc}
          oidcName={oidcName}
          onDone={finish}
        />
      ) : null}
    </StepUpContext.Provider>
  );
}

function StepUpDialog({
  method,
  reauthenticateWithOidc,
  oidcName,
  onDone,
}: {
  method: Method;
  reauthenticateWithOidc: (form: FormData) => Promise<void>;
  oidcName: string | null;
  onDone: (ok: boolean) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!dialog.current?.open) dialog.current?.showModal();
  }, []);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const password = new FormData(event.currentTarget).get("password");
    setPending(true);
    const problem = await reauthenticate(typeof password === "string" ? password : "");
    setPending(false);
    if (problem) setError(problem);
    else onDone(true);
  };
  return (
    <dialog
      ref={dialog}
      aria-labelledby="step-up-title"
      data-testid="step-up-dialog"
      onCancel={(e) => {
        e.preventDefault();
        onDone(false);
      }}
      className="m-auto w-full max-w-sm rounded-xl p-6 shadow-xl ring-1 ring-slate-200 backdrop:bg-slate-900/40"
    >
      <h2 id="step-up-title" className="text-lg font-semibold">
        Confirm it is you
      </h2>
      <p className="mt-1 text-sm text-slate-600">This change is protected: enter your password again to continue. Nothing has been changed yet.</p>
      <form onSubmit={(e) => void submit(e)} className="mt-4 space-y-3">
        <TextField label="Your password" name="password" type="password" autoComplete="current-password" required autoFocus errors={error ? [error] : undefined} />
        <div className="flex gap-2">
          <Button type="submit" disabled={pending}>
            {pending ? "Checking…" : "Confirm"}
          </Button>
          <Button type="button" variant="secondary" onClick={() => onDone(false)}>
            Cancel
          </Button>
        </div>
      </form>
      {oidcName ? (
        <form action={reauthenticateWithOidc} className="mt-4 border-t border-slate-200 pt-4">
          <input type="hidden" name="returnTo" value={typeof window === "undefined" ? "/agents" : window.location.pathname} />
          <p className="mb-2 text-xs text-slate-500">
            {method === "oidc" ? "You signed in with single sign-on. " : ""}Re-authenticating with {oidcName} leaves this page; submit the change again afterwards.
          </p>
          <Button type="submit" variant="secondary" className="w-full">
            Continue with {oidcName}
          </Button>
        </form>
      ) : null}
    </dialog>
  );
}
