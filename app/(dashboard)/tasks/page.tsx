import type { Metadata } from "next";
import Link from "next/link";
import { formatTime } from "@/components/format";
import { TaskStatusBadge } from "@/components/tasks/task-status-badge";
import { LinkButton } from "@/components/ui/button";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";
import { getAgent } from "@/lib/agents/agents";
import { listTasks } from "@/lib/tasks/tasks";

export const metadata: Metadata = { title: "Tasks" };

export default async function TasksPage({ searchParams }: { searchParams: Promise<{ agent?: string }> }) {
  const actor = await requirePageActor("read");
  const { agent } = await searchParams;
  // A filter that names no agent is said on the page, not a server error and not every task.
  const { tasks, problem } = await listTasks(getDb(), actor, { agentId: agent }).then(
    (found) => ({ tasks: found, problem: null }),
    (error: unknown) => {
      if (isAppError(error) && error.code === "INVALID_INPUT") return { tasks: [], problem: error.userMessage };
      throw error;
    },
  );
  const canWrite = roleCan(actor.role, "tasks:write");
  // Filtered to one agent (its page links here): said, with the way back to every task.
  const forAgent = agent && !problem ? await getAgent(getDb(), actor, agent).catch(() => null) : null;
  return (
    <>
      <PageHeader
        title="Tasks"
        description="Each task gives one agent a purpose, an allowlist and a lifetime; its token is the agent's only credential."
        actions={canWrite ? <LinkButton href={agent ? `/tasks/new?agent=${encodeURIComponent(agent)}` : "/tasks/new"}>Create task</LinkButton> : null}
      />
      {problem ? (
        <p role="alert" className="mb-4 text-sm text-red-700">
          {problem}
        </p>
      ) : null}
      {forAgent ? (
        <p className="mb-4 text-sm text-slate-700" data-testid="tasks-filter">
          Tasks of the agent <Link className="font-medium text-brand-700 hover:underline" href={`/agents/${forAgent.id}`}>{forAgent.name}</Link>.{" "}
          <Link className="text-brand-700 hover:underline" href="/tasks">Show every task</Link>
        </p>
      ) : null}
      {problem ? null : tasks.length === 0 ? (
        <EmptyState
          title={forAgent ? `${forAgent.name} has no tasks yet` : "No tasks yet"}
          action={canWrite ? <LinkButton href={forAgent ? `/tasks/new?agent=${encodeURIComponent(forAgent.id)}` : "/tasks/new"}>{forAgent ? "Create a task for it" : "Create the first task"}</LinkButton> : null}
        >
          Create a task for each assignment of an agent: what it is for, what it may do, and for how long.
        </EmptyState>
      ) : (
        <Table head={["Purpose", "Agent", "Scope", "Status", "Created", "Expires"]}>
          {tasks.map((t) => (
            <tr key={t.id}>
              <Td>
                <Link className="font-medium text-brand-700 hover:underline" href={`/tasks/${t.id}`}>
                  {t.purpose}
                </Link>
              </Td>
              <Td>
                <Link className="hover:underline" href={`/agents/${t.agent.id}`}>
                  {t.agent.name}
                </Link>
              </Td>
              <Td className="font-mono text-xs">{t.scope || "none"}</Td>
              <Td>
                <TaskStatusBadge status={t.status} />
              </Td>
              <Td className="whitespace-nowrap">{formatTime(t.createdAt)}</Td>
              <Td className="whitespace-nowrap">{formatTime(t.expiresAt)}</Td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
