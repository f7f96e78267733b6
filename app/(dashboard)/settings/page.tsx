import type { Metadata } from "next";
import Link from "next/link";
import { formatTime } from "@/components/format";
import { ApprovalSettingsForm } from "@/components/settings/approval-settings-form";
import { ApproverScopeForm } from "@/components/settings/approver-scope-form";
import { MaxTtlForm } from "@/components/settings/max-ttl-form";
import { SimpleActionButton } from "@/components/tasks/simple-action-button";
import { Badge } from "@/components/ui/badge";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { listAgents } from "@/lib/agents/agents";
import { listApproversWithScopes } from "@/lib/approvals/approver-scope";
import { getApprovalSettings } from "@/lib/approvals/settings";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { listSigningKeys } from "@/lib/identity/key-store";
import { formatDuration } from "@/lib/tasks/duration";
import { getMaxTaskTtlSeconds } from "@/lib/tasks/settings";
import { rotateKeysAction, setApprovalRulesAction, setApproverScopeAction, setMaxTtlAction } from "./actions";

export const metadata: Metadata = { title: "Settings" };

export default async function SettingsPage() {
  const actor = await requirePageActor("read");
  const canWrite = roleCan(actor.role, "settings:write");
  const config = loadAppConfig();
  const db = getDb();
  const canScope = roleCan(actor.role, "users:write");
  const [keys, maxTtl, approvals] = await Promise.all([listSigningKeys(db, actor), getMaxTaskTtlSeconds(db), getApprovalSettings(db, actor)]);
  const [approvers, agents] = canScope ? await Promise.all([listApproversWithScopes(db, actor), listAgents(db, actor, {})]) : [[], []];
  const rows: Array<[string, string]> = [
    ["Dashboard URL", config.publicUrl],
    ["Session lifetime", `${Math.round(config.sessionMaxAgeSeconds / 3600)} hours`],
    ["Session idle timeout", `${Math.round(config.sessionIdleSeconds / 60)} minutes unused (your sessions: Your account)`],
    [
      "Session cookie",
      config.secure ? "__Host- prefixed, Secure, HttpOnly, SameSite=Lax" : "plain http: not Secure (use only on loopback; serve the dashboard over https anywhere else)",
    ],
    ["Re-authentication for dangerous changes", `after ${Math.round(config.stepUpMaxAgeSeconds / 60)} minutes`],
    ["Single sign-on (OIDC)", config.oidc ? `${config.oidc.name} (${config.oidc.issuer})` : "not configured"],
    ["Maximum task lifetime", formatDuration(maxTtl)],
    ["Four-eyes approvals", approvals.fourEyes ? "on: an agent's owner and its task's creator cannot approve alone" : "off"],
  ];
  return (
    <>
      <PageHeader title="Settings" description="Environment configuration in effect (see .env.example), task limits and the keys that sign task tokens." />
      <dl className="max-w-3xl divide-y divide-slate-100 rounded-lg bg-white shadow-sm ring-1 ring-slate-200">
        {rows.map(([k, v]) => (
          <div key={k} className="grid grid-cols-3 gap-4 px-6 py-3 text-sm">
            <dt className="font-medium text-slate-600">{k}</dt>
            <dd className="col-span-2 break-all">{v}</dd>
          </div>
        ))}
      </dl>
      {canWrite ? (
        <section className="mt-8 max-w-3xl">
          <h2 className="mb-2 font-semibold">Task limits</h2>
          <MaxTtlForm action={setMaxTtlAction} current={formatDuration(maxTtl)} />
        </section>
      ) : null}
      {canWrite ? (
        <section className="mt-8 max-w-3xl">
          <h2 className="mb-2 font-semibold">Who must approve</h2>
          <ApprovalSettingsForm action={setApprovalRulesAction} fourEyes={approvals.fourEyes} required={approvals.requiredByEffect} />
          <p className="mt-3 text-sm">
            <Link className="text-brand-700 underline" href="/settings/webhooks">
              Webhooks and their deliveries
            </Link>{" "}
            tell people when a request waits.
          </p>
        </section>
      ) : null}
      {canScope ? (
        <section className="mt-8 max-w-3xl">
          <h2 className="mb-2 font-semibold">Approver scopes</h2>
          <p className="mb-2 text-sm text-slate-600">An approver limited to some agents or services sees and decides only their held requests.</p>
          <ApproverScopeForm action={setApproverScopeAction} users={approvers} agents={agents.map((a) => ({ id: a.id, name: a.name }))} />
        </section>
      ) : null}
      <section className="mt-8 max-w-3xl">
        <div className="mb-2 flex items-center justify-between">
          <h2 className="font-semibold">Signing keys</h2>
          {canWrite ? <SimpleActionButton action={rotateKeysAction} fields={{}} label="Rotate keys" confirm="Create a new signing key? Existing tokens stay valid until they expire." /> : null}
        </div>
        <p className="mb-3 text-sm text-slate-600">
          The newest active key signs task tokens. After a rotation, older keys only verify the tokens they signed until those expire, then retire. Public keys:{" "}
          <a className="text-brand-700 underline" href="/.well-known/jwks.json">
            /.well-known/jwks.json
          </a>
        </p>
        <Table label="Signing keys" head={["Key id", "Status", "Created", "Verifies until", "Tokens signed"]}>
          {keys.map((k) => (
            <tr key={k.kid}>
              <Td className="font-mono text-xs">{k.kid}</Td>
              <Td>
                <Badge tone={k.status === "active" ? "green" : k.status === "retiring" ? "amber" : "slate"}>{k.status}</Badge>
              </Td>
              <Td className="whitespace-nowrap">{formatTime(k.createdAt)}</Td>
              <Td className="whitespace-nowrap">{k.status === "active" ? "—" : formatTime(k.verifyUntil)}</Td>
              <Td>{k.tokensSigned}</Td>
            </tr>
          ))}
        </Table>
      </section>
      {roleCan(actor.role, "users:write") ? (
        <p className="mt-8 text-sm">
          <Link className="text-brand-700 underline" href="/settings/api-keys">
            Manage API keys
          </Link>{" "}
          for the admin API.
        </p>
      ) : null}
    </>
  );
}
