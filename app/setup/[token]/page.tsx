import type { Metadata } from "next";
import Link from "next/link";
import { connection } from "next/server";
import { SetupForm } from "@/components/auth/setup-form";
import { getDb } from "@/lib/db/client";
import { isSetupTokenValid } from "@/lib/users/setup";
import { completeSetupAction } from "./actions";

export const metadata: Metadata = { title: "Set up Bulkhead" };
export const dynamic = "force-dynamic";

export default async function SetupPage({ params }: { params: Promise<{ token: string }> }) {
  // Request time only: the token's expiry is compared with the clock, which a router prefetch
  // would otherwise try to prerender (an error logged per request: tests/e2e/request-logs.spec.ts).
  await connection();
  const { token } = await params;
  const valid = await isSetupTokenValid(getDb(), token);
  // A link followed again after the first account was made: that person signs in now.
  const done = !valid && (await getDb().user.count()) > 0;
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm rounded-xl bg-white p-8 shadow-sm ring-1 ring-slate-200">
        <h1 className="text-xl font-semibold">Set up Bulkhead</h1>
        {valid ? (
          <>
            <p className="mt-1 text-sm text-slate-600">Create the first admin account. This link works once.</p>
            <div className="mt-6">
              <SetupForm action={completeSetupAction.bind(null, token)} />
            </div>
          </>
        ) : done ? (
          <p className="mt-3 text-sm text-slate-700">
            Setup is done: Bulkhead has an account already, and this link opens nothing.{" "}
            <Link className="font-medium text-brand-700 underline" href="/login">
              Sign in
            </Link>
            , or ask an admin for an account of your own (the Users page, or <code>npx bulkhead user create</code>).
          </p>
        ) : (
          <p className="mt-3 text-sm text-slate-700">
            This setup link is invalid, expired or already used. Restart Bulkhead to get a new link while no account exists, or
            create an admin with <code>npx bulkhead user create --email you@example.com --role admin</code>.
          </p>
        )}
      </div>
    </main>
  );
}
