import type { Metadata } from "next";
import { formatTime } from "@/components/format";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { listPendingApprovals } from "@/lib/tasks/list";

export const metadata: Metadata = { title: "Approvals" };

export default async function ApprovalsPage() {
  const actor = await requirePageActor("read");
  const pending = await listPendingApprovals(getDb(), actor);
  return (
    <>
      <PageHeader title="Approvals" description="Irreversible and held actions wait here for a human decision." />
      {pending.length === 0 ? (
        <EmptyState title="Nothing is waiting">No held action needs a decision right now.</EmptyState>
      ) : (
        <Table head={["Agent", "Request", "Why held", "Waiting since", "Times out"]}>
          {pending.map((a) => (
            <tr key={a.id}>
              <Td>{a.agent.name}</Td>
              <Td className="font-mono text-xs">
                {a.method} {a.url}
              </Td>
              <Td>{a.reason}</Td>
              <Td>{formatTime(a.createdAt)}</Td>
              <Td>{formatTime(a.expiresAt)}</Td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
