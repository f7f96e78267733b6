import type { Metadata } from "next";
import Link from "next/link";
import { AgentData } from "@/components/approvals/agent-data";
import { Countdown } from "@/components/approvals/countdown";
import { LiveRefresh } from "@/components/approvals/live-refresh";
import { approvalsPulse } from "@/lib/approvals/live";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { ListPager } from "@/components/ui/list-pager";
import { Table, Td } from "@/components/ui/table";
import { isAppError } from "@/lib/errors/app-error";
import { countPendingApprovals, listApprovalsPage } from "@/lib/approvals/card";
import { effectSummary, mostSevereFirst } from "@/lib/approvals/severity";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { listRecentlyCancelledApprovals } from "@/lib/tasks/list";

export const metadata: Metadata = { title: "Approvals" };

const TONE = { read: "slate", write: "blue", destructive: "amber", irreversible: "red" } as const;

/** Waiting actions a page shows, oldest first (the rest a page further: "Next waiting actions"). */
const PAGE_SIZE = 200;

export default async function ApprovalsPage({ searchParams }: { searchParams: Promise<{ cursor?: string }> }) {
  const actor = await requirePageActor("read");
  const { cursor } = await searchParams;
  // Read before the page's data: anything that changes after it makes the live stream's version differ.
  const { fingerprint: version } = await approvalsPulse(getDb(), actor);
  const { pending, nextCursor, problem } = await listApprovalsPage(getDb(), actor, { state: "pending", limit: PAGE_SIZE, cursor }).then(
    (page) => ({ pending: page.items, nextCursor: page.nextCursor, problem: null }),
    (error: unknown) => {
      if (isAppError(error) && error.code === "INVALID_INPUT") return { pending: [], nextCursor: null, problem: error.userMessage };
      throw error;
    },
  );
  // More than a page waits: said, with how many, so that none is missed.
  const waiting = cursor || nextCursor ? await countPendingApprovals(getDb(), actor) : pending.length;
  const cancelled = await listRecentlyCancelledApprovals(getDb(), actor);
  return (
    <>
      <LiveRefresh version={version} />
      <PageHeader
        title="Approvals"
        description="Held actions wait here for a person. Open one to read the whole request and decide; an approval releases exactly that request, once; requests not decided in time are refused."
      />
      {problem ? (
        <p role="alert" className="mb-4 text-sm text-red-700">
          {problem}
        </p>
      ) : null}
      {cursor || nextCursor ? (
        <p className="mb-3 text-sm text-slate-700" data-testid="pending-count">
          {`${waiting} actions are waiting; this page shows ${pending.length} of them, oldest first.`}
        </p>
      ) : null}
      {/* A live region: when a held request arrives (or is decided elsewhere) and the list refreshes, a screen reader hears the new count. */}
      <p role="status" className="sr-only" data-testid="approvals-waiting">
        {waiting === 0 ? "No held requests are waiting." : `${waiting} held ${waiting === 1 ? "request is" : "requests are"} waiting.`}
      </p>
      {pending.length === 0 ? (
        <EmptyState title="Nothing is waiting">No held action needs a decision right now.</EmptyState>
      ) : (
        <Table label="Held requests waiting" head={["Agent and task", "Actions", "Request", "Waiting since", "Times out", ""]}>
          {pending.map((a) => (
            <tr key={a.id} data-testid="approval-row" data-approval-id={a.id}>
              <Td>
                <div className="font-medium">{a.agent}</div>
                <div className="text-xs text-slate-600">{a.purpose}</div>
              </Td>
              <Td className="max-w-md text-xs">
                <div className="mb-1 font-semibold" data-testid="effect-summary">
                  {effectSummary(a.operations)}
                </div>
                <ul className="space-y-1">
                  {mostSevereFirst(a.operations).map((o, i) => (
                    <li key={i}>
                      <Badge tone={TONE[o.effect] ?? "slate"}>{o.effect}</Badge> <AgentData>{o.operation}</AgentData> on <AgentData>{o.resource}</AgentData>{" "}
                      <span className="text-slate-600">
                        ({o.service}, {o.environment})
                      </span>
                    </li>
                  ))}
                </ul>
                {a.required > 1 ? <div className="mt-1">{`${a.approvals} of ${a.required} approvers`}</div> : null}
              </Td>
              <Td className="max-w-md break-all text-xs">
                <span className="font-mono">{a.method}</span> <AgentData>{a.url}</AgentData>
              </Td>
              <Td className="whitespace-nowrap">{formatTime(new Date(a.createdAt))}</Td>
              <Td className="whitespace-nowrap">
                <Countdown until={a.expiresAt} />
              </Td>
              <Td>
                <Link className="font-semibold text-brand-700 underline" href={`/approvals/${a.id}`}>
                  Review
                </Link>
              </Td>
            </tr>
          ))}
        </Table>
      )}
      {problem ? null : <ListPager base="/approvals" filters={{}} cursor={cursor} nextCursor={nextCursor} nextLabel="Next waiting actions" endLabel="No more actions are waiting." />}
      {cancelled.length > 0 ? (
        <section className="mt-8">
          <h2 className="mb-1 text-base font-semibold">Cancelled in the last hour</h2>
          <p className="mb-3 text-sm text-slate-600">The task ended, expired or was revoked, its agent was suspended or its token revoked while these waited. Nothing was forwarded, and they can no longer be approved.</p>
          <Table label="Cancelled in the last hour" head={["Agent", "Request", "Status", "Why", "Cancelled at"]}>
            {cancelled.map((a) => (
              <tr key={a.id} data-testid="cancelled-approval-row">
                <Td>
                  <Link className="underline" href={`/approvals/${a.id}`}>
                    {a.agent.name}
                  </Link>
                </Td>
                <Td className="max-w-md break-all font-mono text-xs">
                  {a.method} <AgentData>{a.url}</AgentData>
                </Td>
                <Td>
                  <Badge tone="red">Cancelled</Badge>
                </Td>
                <Td className="text-xs">{a.why}</Td>
                <Td className="whitespace-nowrap">{a.cancelledAt ? formatTime(a.cancelledAt) : ""}</Td>
              </tr>
            ))}
          </Table>
        </section>
      ) : null}
    </>
  );
}
