import type { Metadata } from "next";
import { CreateTaskForm } from "@/components/tasks/create-task-form";
import { EmptyState } from "@/components/ui/empty-state";
import { LinkButton } from "@/components/ui/button";
import { PageHeader } from "@/components/ui/page-header";
import { listAgents } from "@/lib/agents/agents";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { policyTemplates } from "@/lib/policy/templates";
import { formatDuration } from "@/lib/tasks/duration";
import { getMaxTaskTtlSeconds } from "@/lib/tasks/settings";
import { createTaskAction } from "../actions";

export const metadata: Metadata = { title: "Create task" };

export default async function NewTaskPage({ searchParams }: { searchParams: Promise<{ agent?: string }> }) {
  const actor = await requirePageActor("tasks:write");
  const { agent } = await searchParams;
  const db = getDb();
  const agents = await listAgents(db, actor, { status: "active" });
  const maxTtl = formatDuration(await getMaxTaskTtlSeconds(db));
  return (
    <>
      <PageHeader title="Create task" description="A task scopes one agent to one purpose. Anything the allowlist does not name is denied." />
      {agents.length === 0 ? (
        <EmptyState title="No active agents" action={<LinkButton href="/agents/new">Register an agent</LinkButton>}>
          A task belongs to an active agent.
        </EmptyState>
      ) : (
        <CreateTaskForm
          action={createTaskAction}
          agents={agents.map((a) => ({ id: a.id, name: a.name }))}
          defaultAgentId={agent}
          templates={policyTemplates.map((t) => ({ id: t.id, title: t.title, yaml: t.yaml }))}
          maxTtl={maxTtl}
        />
      )}
    </>
  );
}
