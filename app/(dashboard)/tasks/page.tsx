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
import { ListPager } from "@/components/ui/list-pager";
import { listTasksPage } from "@/lib/tasks/tasks";
import { TASK_STATUSES } from "@/lib/tasks/view";

/** Tasks a page of the list shows (the API's pages hold up to 500). */
const PAGE_SIZE = 100;

export const metadata: Metadata = { title: "Tasks" };

export default async function TasksPage({ searchParams }: { searchParams: Promise<{ agent?: string; status?: string; cursor?: string }> }) {
  const actor = await requirePageActor("read");
  const { agent, status, cursor } = await searchParams;
  // A filter that names no agent, or a page position that is not one, is said on the page, not a
  // server error and not every task.
  const { tasks, nextCursor, problem } = await listTasksPage(getDb(), actor, { agentId: agent, status, cursor, limit: PAGE_SIZE }).then(
    (page) => ({ tasks: page.items, nextCursor: page.nextCursor, problem: null }),
    (error: unknown) => {
      if (isAppError(error) && error.code === "INVALID_INPUT") return { tasks: [], nextCursor: null, problem: error.userMessage };
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
      <form role="search" className="mb-4 flex flex-wrap gap-2" action="/tasks">
        {agent ? <input type="hidden" name="agent" value={agent} /> : null}
        <select name="status" defaultValue={status ?? ""} aria-label="Status" className="rounded-md border-0 px-3 py-2 text-sm ring-1 ring-inset ring-slate-300">
          <option value="">All statuses</option>
          {TASK_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s[0]!.toUpperCase() + s.slice(1)}
            </option>
          ))}
        </select>
        <button type="submit" className="rounded-md bg-white px-3 py-2 text-sm font-semibold ring-1 ring-inset ring-slate-300">
          Filter
        </button>
      </form>
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
      {problem ? null : tasks.length === 0 && cursor ? (
        <p className="text-sm text-slate-600">No older tasks.</p>
      ) : tasks.length === 0 && status ? (
        <EmptyState title={`No ${status} tasks`}>Choose another status, or all statuses.</EmptyState>
      ) : tasks.length === 0 ? (
        <EmptyState
          title={forAgent ? `${forAgent.name} has no tasks yet` : "No tasks yet"}
          action={canWrite ? <LinkButton href={forAgent ? `/tasks/new?agent=${encodeURIComponent(forAgent.id)}` : "/tasks/new"}>{forAgent ? "Create a task for it" : "Create the first task"}</LinkButton> : null}
        >
          Create a task for each assignment of an agent: what it is for, what it may do, and for how long.
        </EmptyState>
      ) : (
        <Table label="Tasks" head={["Purpose", "Agent", "Scope", "Status", "Created", "Expires"]}>
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
      {problem ? null : <ListPager base="/tasks" filters={{ agent, status }} cursor={cursor} nextCursor={nextCursor} nextLabel="Older tasks" endLabel="Oldest task reached." />}
    </>
  );
}
