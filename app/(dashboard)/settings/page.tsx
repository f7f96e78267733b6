import type { Metadata } from "next";
import { PageHeader } from "@/components/ui/page-header";
import { requirePageActor } from "@/lib/auth/current";
import { loadAppConfig } from "@/lib/config/app";

export const metadata: Metadata = { title: "Settings" };

export default async function SettingsPage() {
  await requirePageActor("read");
  const config = loadAppConfig();
  const rows: Array<[string, string]> = [
    ["Dashboard URL", config.publicUrl],
    ["Session lifetime", `${Math.round(config.sessionMaxAgeSeconds / 3600)} hours`],
    ["Single sign-on (OIDC)", config.oidc ? `${config.oidc.name} (${config.oidc.issuer})` : "not configured"],
  ];
  return (
    <>
      <PageHeader title="Settings" description="Configuration comes from environment variables (see .env.example); this page shows what is in effect." />
      <dl className="max-w-2xl divide-y divide-slate-100 rounded-lg bg-white shadow-sm ring-1 ring-slate-200">
        {rows.map(([k, v]) => (
          <div key={k} className="grid grid-cols-3 gap-4 px-6 py-3 text-sm">
            <dt className="font-medium text-slate-600">{k}</dt>
            <dd className="col-span-2 break-all">{v}</dd>
          </div>
        ))}
      </dl>
    </>
  );
}
