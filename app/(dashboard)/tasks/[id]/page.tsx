import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";
import { formatTime } from "@/components/format";
import { visible } from "@/lib/audit/view";
import { BlastRadiusSummary } from "@/components/tasks/blast-radius";
import { MintToken } from "@/components/tasks/mint-token";
import { agentProxyAddress } from "@/lib/config/worker";
import { PolicyWorkbench } from "@/components/tasks/policy-workbench";
import { ScopeSummary } from "@/components/tasks/scope-summary";
import { SimpleActionButton } from "@/components/tasks/simple-action-button";
import { TaskStatusBadge } from "@/components/tasks/task-status-badge";
import { Badge } from "@/components/ui/badge";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";
import { parseCanonicalScope } from "@/lib/identity/scope";
import { listTaskTokensPage } from "@/lib/identity/task-tokens";
import { ListPager } from "@/components/ui/list-pager";
import { blastRadius } from "@/lib/policy/blast-radius";
import { parsePolicy } from "@/lib/policy/parse";
import { policyErrors } from "@/lib/tasks/policy";
import { getTask } from "@/lib/tasks/tasks";
import { checkTaskScope } from "@/lib/tasks/scope";
import { listSandboxEvents, listSandboxes } from "@/lib/sandboxes/sandboxes";
import { SandboxTable } from "@/components/sandboxes/sandbox-table";
import { stopSandboxAction } from "../../sandboxes/actions";
import { endTaskAction, mintTokenAction, revokeTokenAction, simulateAction, updatePolicyAction } from "../actions";

export const metadata: Metadata = { title: "Task" };

/** Tokens the task's page lists at a time (the API's pages hold up to 500). */
const TOKENS_PER_PAGE = 100;

export default async function TaskPage({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: Promise<{ tokens?: string | string[] }> }) {
  const actor = await requirePageActor("read");
  const { id } = await params;
  const { tokens: rawCursor } = await searchParams;
  const tokenCursor = typeof rawCursor === "string" && rawCursor !== "" ? rawCursor : undefined;
  const db = getDb();
  const task = await getTask(db, actor, id).catch((error: unknown) => {
    if (isAppError(error) && error.code === "NOT_FOUND") notFound();
    throw error;
  });
  const [tokenPage, scopeReport, sandboxes, sandboxEvents] = await Promise.all([
    // A page position that is not one is said on the page, never read as the first page.
    listTaskTokensPage(db, actor, task.id, { cursor: tokenCursor, limit: TOKENS_PER_PAGE }).then(
      (page) => ({ tokens: page.items, nextCursor: page.nextCursor, problem: null as string | null }),
      (error: unknown) => {
        if (isAppError(error) && error.code === "INVALID_INPUT") return { tokens: [], nextCursor: null, problem: error.userMessage };
        throw error;
      },
    ),
    checkTaskScope(db, actor, task.id),
    listSandboxes(db, actor, { taskId: task.id }),
    listSandboxEvents(db, actor, task.id),
  ]);
  const { tokens } = tokenPage;
  const scope = parseCanonicalScope(task.scope);
  const canWrite = roleCan(actor.role, "tasks:write");
  const active = task.status === "active";
  const now = new Date();
  const parsedPolicy = parsePolicy(task.policyYaml);
  const radius = parsedPolicy.ok ? blastRadius(parsedPolicy.policy, now) : null;
  // A policy that names a service, environment or operation that has since disappeared: the
  // proxy refuses the task's requests (policy_invalid) until it is fixed.
  const missing = parsedPolicy.ok && active ? await policyErrors(db, task.policyYaml) : null;
  return (
    <>
      <PageHeader
        title={task.purpose}
        description={
          <>
            Task for{" "}
            <Link className="text-brand-700 hover:underline" href={`/agents/${task.agent.id}`}>
              {task.agent.name}
            </Link>
          </>
        }
        actions={
          <>
            <Link className="mr-2 rounded-md px-3 py-2 text-sm font-semibold text-brand-700 ring-1 ring-slate-300 hover:bg-slate-50" href={`/tasks/${task.id}/report`} prefetch={false} data-testid="task-report-link">
              Report
            </Link>
            {canWrite && active ? <SimpleActionButton action={endTaskAction} fields={{ id: task.id }} label="End task" variant="danger" confirm="End this task? Its tokens stop working everywhere." /> : null}
          </>
        }
      />
      <dl className="grid max-w-3xl grid-cols-1 gap-4 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200 sm:grid-cols-3">
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Status</dt>
          <dd className="mt-1" data-testid="task-status">
            <TaskStatusBadge status={task.status} />
          </dd>
        </div>
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Created</dt>
          <dd className="mt-1 text-sm">
            {formatTime(task.createdAt)}
            {task.createdBy ? <span className="block text-slate-500">by {task.createdBy.email}</span> : null}
          </dd>
        </div>
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">{active ? "Expires" : "Ended"}</dt>
          <dd className="mt-1 text-sm">
            {formatTime(active ? task.expiresAt : (task.endedAt ?? task.expiresAt))}
            {task.endedReason ? <span className="block text-slate-500">{task.endedReason}</span> : null}
          </dd>
        </div>
      </dl>

      {/* Scope (layer 1) and what the policy reaches (layer 2), side by side. */}
      <div className="grid gap-x-6 lg:grid-cols-2">
      <section className="mt-8">
        <h2 className="mb-2 font-semibold">Scope <span className="text-xs font-normal text-slate-500">layer 1: the most the task&apos;s tokens allow</span></h2>
        <ScopeSummary entries={scope?.entries ?? []} valid={scope !== null} warnings={scopeReport.warnings} />
      </section>
      <section className="mt-8">
        <h2 className="mb-2 font-semibold">What this task can reach <span className="text-xs font-normal text-slate-500">layer 2: what the policy allows; only the part inside the scope is ever forwarded</span></h2>
        {missing ? (
          <div role="alert" data-testid="policy-stale" className="mb-3 rounded-md bg-red-50 p-3 text-sm text-red-800 ring-1 ring-red-200">
            <p className="font-semibold">The proxy refuses every request of this task: its policy names something that no longer exists.</p>
            <ul className="mt-1 list-disc pl-5">
              {missing.map((m) => (
                <li key={m}>{m}</li>
              ))}
            </ul>
          </div>
        ) : null}
        {radius ? <BlastRadiusSummary radius={radius} /> : <p className="text-sm text-red-700">The stored policy is not valid; every request is denied.</p>}
      </section>
      </div>

      <section className="mt-8">
        <h2 className="mb-2 font-semibold">Allowlist policy <span className="text-xs font-normal text-slate-500">version {task.policyVersion}</span></h2>
        <PolicyWorkbench taskId={task.id} initialYaml={task.policyYaml} version={task.policyVersion} canEdit={canWrite && active} save={updatePolicyAction} simulate={simulateAction} />
      </section>

      <section className="mt-8 max-w-3xl">
        <h2 className="mb-2 font-semibold">Tokens</h2>
        {canWrite && active ? (
          <div className="mb-4">
            <MintToken action={mintTokenAction} taskId={task.id} proxy={agentProxyAddress()} />
          </div>
        ) : null}
        {tokenPage.problem ? (
          <p className="text-sm text-red-700" role="alert">{tokenPage.problem}</p>
        ) : tokens.length === 0 && !tokenCursor ? (
          <p className="text-sm text-slate-600">No token has been minted for this task.</p>
        ) : (
          <Table label="Tokens" head={["Token id (jti)", "Key", "Issued", "Expires", "State", ""]}>
            {tokens.map((t) => {
              const state = t.revokedAt ? "revoked" : t.expiresAt <= now ? "expired" : active ? "valid" : "task ended";
              return (
                <tr key={t.jti}>
                  <Td className="font-mono text-xs">{t.jti}</Td>
                  <Td className="font-mono text-xs">{t.kid}</Td>
                  <Td className="whitespace-nowrap">{formatTime(t.issuedAt)}</Td>
                  <Td className="whitespace-nowrap">{formatTime(t.expiresAt)}</Td>
                  <Td>
                    <Badge tone={state === "valid" ? "green" : state === "revoked" ? "red" : "slate"}>{state}</Badge>
                  </Td>
                  <Td>
                    {canWrite && state === "valid" ? <SimpleActionButton action={revokeTokenAction} fields={{ jti: t.jti, taskId: task.id }} label="Revoke" /> : null}
                  </Td>
                </tr>
              );
            })}
          </Table>
        )}
        {tokenPage.problem ? null : (
          <ListPager base={`/tasks/${task.id}`} filters={{}} cursor={tokenCursor} nextCursor={tokenPage.nextCursor} nextLabel="Older tokens" endLabel="Oldest token reached." param="tokens" />
        )}
      </section>

      <section className="mt-8" data-testid="task-sandboxes">
        <h2 className="mb-2 font-semibold">Sandboxes</h2>
        {sandboxes.length === 0 ? (
          <p className="text-sm text-slate-600">This task has not run in a sandbox.</p>
        ) : (
          <SandboxTable sandboxes={sandboxes} stop={canWrite ? stopSandboxAction : null} />
        )}
        {sandboxEvents.length > 0 ? (
          <div className="mt-4">
            <Table label="Sandbox events" head={["When", "Event", "Outcome", "Detail"]}>
              {sandboxEvents.map((e) => (
                <tr key={e.id} data-testid="sandbox-event">
                  <Td className="whitespace-nowrap">{formatTime(e.at)}</Td>
                  <Td className="font-mono text-xs">{e.type}</Td>
                  <Td>{e.outcome ? <Badge tone={e.outcome === "deny" ? "red" : "green"}>{e.outcome}</Badge> : null}</Td>
                  <Td className="max-w-xl text-xs text-slate-700">{e.reason ? visible(e.reason) : null}</Td>
                </tr>
              ))}
            </Table>
          </div>
        ) : null}
      </section>
    </>
  );
}
