import type { Metadata } from "next";
import Link from "next/link";
import { ZodError } from "zod";
import { AgentStatusBadge } from "@/components/agents/status-badge";
import { formatTime } from "@/components/format";
import { LinkButton } from "@/components/ui/button";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { ListPager } from "@/components/ui/list-pager";
import { listAgentsPage } from "@/lib/agents/agents";
import { isAppError } from "@/lib/errors/app-error";

/** Agents a page of the list shows (the API's pages hold up to 500). */
const PAGE_SIZE = 100;
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";

export const metadata: Metadata = { title: "Agents" };

export default async function AgentsPage({ searchParams }: { searchParams: Promise<{ q?: string; status?: string; cursor?: string }> }) {
  const actor = await requirePageActor("read");
  const { q, status, cursor } = await searchParams;
  const query = typeof q === "string" ? q.slice(0, 200) : undefined;
  // Passed as sent: a status that is not one is said on the page (below), never read as "all".
  const statusFilter = typeof status === "string" && status !== "" ? (status as "active") : undefined;
  // A search the list refuses (a NUL character), or a page position that is not one, is said on
  // the page, not a server error.
  const { agents, nextCursor, problem } = await listAgentsPage(getDb(), actor, { query, status: statusFilter, cursor, limit: PAGE_SIZE }).then(
    (page) => ({ agents: page.items, nextCursor: page.nextCursor, problem: null }),
    (error: unknown) => {
      if (error instanceof ZodError) return { agents: [], nextCursor: null, problem: error.issues.map((i) => i.message).join(" ") };
      if (isAppError(error) && error.code === "INVALID_INPUT") return { agents: [], nextCursor: null, problem: error.userMessage };
      throw error;
    },
  );
  const canWrite = roleCan(actor.role, "agents:write");
  return (
    <>
      <PageHeader
        title="Agents"
        description="Registered actors. An agent acts only through short-lived task tokens and never holds upstream credentials."
        actions={canWrite ? <LinkButton href="/agents/new">Register agent</LinkButton> : null}
      />
      <form role="search" className="mb-4 flex flex-wrap gap-2" action="/agents">
        <label htmlFor="q" className="sr-only">
          Search agents
        </label>
        <input
          id="q"
          name="q"
          defaultValue={query}
          placeholder="Search by name, description or owner"
          className="w-full max-w-sm rounded-md border-0 px-3 py-2 text-sm ring-1 ring-inset ring-slate-300"
        />
        <select name="status" defaultValue={statusFilter ?? ""} aria-label="Status" className="rounded-md border-0 px-3 py-2 text-sm ring-1 ring-inset ring-slate-300">
          <option value="">All statuses</option>
          <option value="active">Active</option>
          <option value="suspended">Suspended</option>
        </select>
        <button type="submit" className="rounded-md bg-white px-3 py-2 text-sm font-semibold ring-1 ring-inset ring-slate-300">
          Search
        </button>
      </form>
      {problem ? (
        <p role="alert" className="mb-4 text-sm text-red-700">
          {problem}
        </p>
      ) : null}
      {problem && !(query || statusFilter) ? null : agents.length === 0 ? (
        query || statusFilter ? (
          <EmptyState title="No agents match">Try another search.</EmptyState>
        ) : (
          <EmptyState
            title="No agents yet"
            action={canWrite ? <LinkButton href="/agents/new">Register the first agent</LinkButton> : null}
          >
            Register each AI agent that should act on your infrastructure. It will get task-scoped tokens, never credentials.
          </EmptyState>
        )
      ) : (
        <Table label="Agents" head={["Name", "Status", "Owner", "Registered"]}>
          {agents.map((a) => (
            <tr key={a.id}>
              <Td>
                <Link href={`/agents/${a.id}`} className="font-medium text-brand-700 hover:underline">
                  {a.name}
                </Link>
                {a.description ? <p className="max-w-md truncate text-xs text-slate-500">{a.description}</p> : null}
              </Td>
              <Td>
                <AgentStatusBadge status={a.status} />
              </Td>
              <Td>{a.owner.email}</Td>
              <Td className="whitespace-nowrap text-slate-600">{formatTime(a.createdAt)}</Td>
            </tr>
          ))}
        </Table>
      )}
      {problem ? null : <ListPager base="/agents" filters={{ q: query, status: statusFilter }} cursor={cursor} nextCursor={nextCursor} nextLabel="Next agents" endLabel="Last agent reached." />}
    </>
  );
}
