import type { Metadata } from "next";
import { AutoRefresh } from "@/components/approvals/auto-refresh";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { SimpleActionButton } from "@/components/tasks/simple-action-button";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { listPendingApprovals, listRecentlyCancelledApprovals } from "@/lib/tasks/list";
import { decideApprovalAction } from "./actions";

export const metadata: Metadata = { title: "Approvals" };

export default async function ApprovalsPage() {
  const actor = await requirePageActor("read");
  const pending = await listPendingApprovals(getDb(), actor);
  const cancelled = await listRecentlyCancelledApprovals(getDb(), actor);
  const canDecide = roleCan(actor.role, "approvals:decide");
  return (
    <>
      <AutoRefresh seconds={3} />
      <PageHeader title="Approvals" description="Held actions wait here for a person. An approval releases exactly the request shown, once; requests not decided in time are denied." />
      {pending.length === 0 ? (
        <EmptyState title="Nothing is waiting">No held action needs a decision right now.</EmptyState>
      ) : (
        <Table head={["Agent", "Request", "Why held", "Waiting since", "Times out", ...(canDecide ? ["Decision"] : [])]}>
          {pending.map((a) => (
            <tr key={a.id} data-testid="approval-row">
              <Td>{a.agent.name}</Td>
              <Td className="max-w-md break-all font-mono text-xs">
                {a.method} {a.url}
              </Td>
              <Td className="max-w-md text-xs">{a.reason}</Td>
              <Td className="whitespace-nowrap">{formatTime(a.createdAt)}</Td>
              <Td className="whitespace-nowrap">{formatTime(a.expiresAt)}</Td>
              {canDecide ? (
                <Td className="whitespace-nowrap">
                  <SimpleActionButton action={decideApprovalAction} fields={{ id: a.id, verdict: "approve" }} label="Approve" variant="primary" confirm={`Approve ${a.method} ${a.url}? It will be forwarded once.`} />{" "}
                  <SimpleActionButton action={decideApprovalAction} fields={{ id: a.id, verdict: "deny" }} label="Deny" variant="danger" />
                </Td>
              ) : null}
            </tr>
          ))}
        </Table>
      )}
      {cancelled.length > 0 ? (
        <section className="mt-8">
          <h2 className="mb-1 text-base font-semibold">Cancelled in the last hour</h2>
          <p className="mb-3 text-sm text-slate-600">The task ended, expired or was revoked, its agent was suspended or its token revoked while these waited. Nothing was forwarded, and they can no longer be approved.</p>
          <Table head={["Agent", "Request", "Status", "Why", "Cancelled at"]}>
            {cancelled.map((a) => (
              <tr key={a.id} data-testid="cancelled-approval-row">
                <Td>{a.agent.name}</Td>
                <Td className="max-w-md break-all font-mono text-xs">
                  {a.method} {a.url}
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
