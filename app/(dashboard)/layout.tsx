import Link from "next/link";
import type { ReactNode } from "react";
import { PendingBadge } from "@/components/approvals/pending-badge";
import { StepUpProvider } from "@/components/auth/step-up";
import { Nav, type NavItem } from "@/components/nav";
import { Badge } from "@/components/ui/badge";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { countPendingApprovals } from "@/lib/approvals/card";
import { getDb } from "@/lib/db/client";
import { loadAppConfig } from "@/lib/config/app";
import { DATABASE_UNAVAILABLE_MESSAGE } from "@/lib/db/errors";
import { isAppError } from "@/lib/errors/app-error";
import { reauthenticateWithOidcAction, signOutAction } from "./actions";

export const dynamic = "force-dynamic";

/** The page when the session cannot be checked: nothing shown, nobody signed out, a sentence on why. */
function DatabaseUnavailable() {
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div role="alert" className="w-full max-w-md rounded-xl bg-white p-8 shadow-sm ring-1 ring-slate-200">
        <h1 className="text-xl font-semibold">Bulkhead cannot reach its database</h1>
        <p className="mt-2 text-sm text-slate-700">{DATABASE_UNAVAILABLE_MESSAGE}</p>
        <p className="mt-2 text-sm text-slate-600">
          The proxy goes on enforcing the policies it has; requests that need the database (held approvals, new tasks) wait or are refused until it is back. The launcher&apos;s log says when it is.
        </p>
      </div>
    </main>
  );
}

export default async function DashboardLayout({ children }: { children: ReactNode }) {
  let actor: Awaited<ReturnType<typeof requirePageActor>>;
  try {
    actor = await requirePageActor("read");
  } catch (error) {
    if (isAppError(error) && error.code === "DATABASE_UNAVAILABLE") return <DatabaseUnavailable />;
    throw error; // redirects to sign-in and 403s are thrown too
  }
  const items: NavItem[] = [
    { href: "/agents", label: "Agents" },
    { href: "/tasks", label: "Tasks" },
    { href: "/approvals", label: "Approvals", extra: <PendingBadge initial={await countPendingApprovals(getDb(), actor)} /> },
    { href: "/sandboxes", label: "Sandboxes" },
    { href: "/audit", label: "Audit" },
    { href: "/replay", label: "Replay" },
    { href: "/services", label: "Services & Credentials" },
    ...(roleCan(actor.role, "users:read") ? [{ href: "/users", label: "Users" }] : []),
    { href: "/settings", label: "Settings" },
    { href: "/account", label: "Your account" },
  ];
  const oidc = loadAppConfig().oidc;
  return (
    <StepUpProvider reauthenticateWithOidc={reauthenticateWithOidcAction} oidcName={oidc?.name ?? null}>
      <div className="min-h-screen md:flex">
        <aside className="border-b border-slate-200 bg-white p-4 md:min-h-screen md:w-60 md:border-b-0 md:border-r">
          <div className="mb-4 flex items-center justify-between md:block">
            <Link href="/agents" className="text-lg font-bold tracking-tight text-ink">
              Bulkhead
            </Link>
          </div>
          <Nav items={items} />
          <div className="mt-6 border-t border-slate-200 pt-4 text-sm">
            <p className="truncate font-medium" title={actor.email}>
              <Link href="/account" className="hover:underline">
                {actor.email}
              </Link>
            </p>
            <p className="mt-1">
              <Badge tone={actor.role === "admin" ? "blue" : "slate"}>{actor.role}</Badge>
            </p>
            <form action={signOutAction} className="mt-3">
              <button type="submit" className="text-slate-600 underline hover:text-slate-900">
                Sign out
              </button>
            </form>
          </div>
        </aside>
        <main className="min-w-0 flex-1 px-4 py-6 md:px-10 md:py-8">{children}</main>
      </div>
    </StepUpProvider>
  );
}
