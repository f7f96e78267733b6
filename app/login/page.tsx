import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { LoginForm } from "@/components/auth/login-form";
import { Button } from "@/components/ui/button";
import { currentActor } from "@/lib/auth/current";
import { safeReturnPath } from "@/lib/auth/return-to";
import { loadAppConfig } from "@/lib/config/app";
import { DATABASE_UNAVAILABLE_MESSAGE } from "@/lib/db/errors";
import { isAppError } from "@/lib/errors/app-error";
import { signInWithOidc, signInWithPassword } from "./actions";

export const metadata: Metadata = { title: "Sign in" };
export const dynamic = "force-dynamic";

const THROTTLED = "Too many failed sign-in attempts for this account or from your network. Wait a few minutes and try again.";

const ERRORS: Record<string, string> = {
  AccessDenied: "Your identity provider signed you in, but there is no active Bulkhead account for you. Ask an admin to add you.",
  Configuration: "Sign-in is misconfigured on the server. Check the logs.",
};

/** Signed in already (go on), signed out, or not knowable now: the database did not answer. */
async function signedIn(): Promise<boolean | "unknown"> {
  try {
    return (await currentActor()) !== null;
  } catch (error) {
    if (isAppError(error) && error.code === "DATABASE_UNAVAILABLE") return "unknown";
    throw error;
  }
}

export default async function LoginPage({ searchParams }: { searchParams: Promise<{ error?: string; code?: string; setup?: string; next?: string | string[] }> }) {
  const state = await signedIn();
  const { error, code, setup, next: nextParam } = await searchParams;
  // The page that sent a signed-out person here, to go back to afterwards (lib/auth/return-to.ts).
  const next = safeReturnPath(nextParam) ?? undefined;
  if (state === true) redirect(next ?? "/agents");
  const oidc = loadAppConfig().oidc;
  // next-auth's own form posts land here after a refusal; a throttled one says so.
  const message =
    state === "unknown" || code === "unavailable"
      ? `${DATABASE_UNAVAILABLE_MESSAGE} Signing in works again once it is back.`
      : error
        ? code === "throttled"
          ? THROTTLED
          : (ERRORS[error] ?? "Sign-in failed. Try again.")
        : null;
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm rounded-xl bg-white p-8 shadow-sm ring-1 ring-slate-200">
        <h1 className="text-xl font-semibold">Sign in to Bulkhead</h1>
        <p className="mt-1 text-sm text-slate-600">Govern what your AI agents can do.</p>
        {message ? (
          <p role="alert" className="mt-4 rounded-md bg-red-50 px-3 py-2 text-sm text-red-800">
            {message}
          </p>
        ) : setup === "done" ? (
          // Where the first-admin link sends its person: the account exists, this is the next step.
          <p role="status" className="mt-4 rounded-md bg-emerald-50 px-3 py-2 text-sm text-emerald-800">
            The first admin account is ready. Sign in with the email and password you just chose.
          </p>
        ) : null}
        <div className="mt-6">
          <LoginForm signIn={signInWithPassword} next={next} />
        </div>
        {oidc ? (
          <form action={signInWithOidc} className="mt-4 border-t border-slate-200 pt-4">
            {next ? <input type="hidden" name="next" value={next} /> : null}
            <Button type="submit" variant="secondary" className="w-full">
              Continue with {oidc.name}
            </Button>
          </form>
        ) : null}
      </div>
    </main>
  );
}
