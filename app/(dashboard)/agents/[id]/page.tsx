import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { AgentStatusForm } from "@/components/agents/agent-status-form";
import { AgentStatusBadge } from "@/components/agents/status-badge";
import { formatTime } from "@/components/format";
import { LinkButton } from "@/components/ui/button";
import { PageHeader } from "@/components/ui/page-header";
import { getAgent } from "@/lib/agents/agents";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";
import { setAgentStatusAction } from "../actions";

export const metadata: Metadata = { title: "Agent" };

export default async function AgentPage({ params }: { params: Promise<{ id: string }> }) {
  const actor = await requirePageActor("read");
  const { id } = await params;
  const agent = await getAgent(getDb(), actor, id).catch((error: unknown) => {
    if (isAppError(error) && error.code === "NOT_FOUND") notFound();
    throw error;
  });
  return (
    <>
      <PageHeader
        title={agent.name}
        description={agent.description || "No description."}
        actions={
          // The next step after registering: an agent acts only through a task's token.
          <div className="flex gap-2">
            <LinkButton variant="secondary" href={`/tasks?agent=${encodeURIComponent(agent.id)}`}>
              Its tasks
            </LinkButton>
            {roleCan(actor.role, "tasks:write") && agent.status === "active" ? <LinkButton href={`/tasks/new?agent=${encodeURIComponent(agent.id)}`}>Create a task for it</LinkButton> : null}
          </div>
        }
      />
      <dl className="grid max-w-2xl grid-cols-1 gap-4 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200 sm:grid-cols-2">
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Status</dt>
          <dd className="mt-1" data-testid="agent-status">
            <AgentStatusBadge status={agent.status} />
          </dd>
        </div>
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Owner</dt>
          <dd className="mt-1">{agent.owner.email}</dd>
        </div>
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Registered</dt>
          <dd className="mt-1">{formatTime(agent.createdAt)}</dd>
        </div>
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Suspended</dt>
          <dd className="mt-1">{formatTime(agent.suspendedAt)}</dd>
        </div>
        <div className="sm:col-span-2">
          <dt className="text-xs font-semibold uppercase text-slate-500">Agent id</dt>
          <dd className="mt-1 font-mono text-xs">{agent.id}</dd>
        </div>
      </dl>
      {roleCan(actor.role, "agents:write") ? (
        <div className="mt-6">
          <AgentStatusForm action={setAgentStatusAction} agentId={agent.id} suspended={agent.status === "suspended"} />
          <p className="mt-2 text-xs text-slate-500">Suspending revokes the agent&apos;s active tasks; their tokens stop working.</p>
        </div>
      ) : null}
    </>
  );
}
