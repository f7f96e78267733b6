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
import { reauthenticateAction, reauthenticateWithOidcAction, signOutAction } from "./actions";

export const dynamic = "force-dynamic";

export default async function DashboardLayout({ children }: { children: ReactNode }) {
  const actor = await requirePageActor("read");
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
  ];
  const oidc = loadAppConfig().oidc;
  return (
    <StepUpProvider reauthenticate={reauthenticateAction} reauthenticateWithOidc={reauthenticateWithOidcAction} oidcName={oidc?.name ?? null}>
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
              {actor.email}
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
        <main className="flex-1 px-4 py-6 md:px-10 md:py-8">{children}</main>
      </div>
    </StepUpProvider>
  );
}
