import type { Metadata } from "next";
import { formatTime } from "@/components/format";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { listCredentialSummaries } from "@/lib/tasks/list";

export const metadata: Metadata = { title: "Services & Credentials" };

export default async function ServicesPage() {
  const actor = await requirePageActor("read");
  const credentials = await listCredentialSummaries(getDb(), actor);
  return (
    <>
      <PageHeader
        title="Services & Credentials"
        description="Upstream credentials live here, encrypted, and are injected by the proxy for their exact service. Agents never see them."
      />
      {credentials.length === 0 ? (
        <EmptyState title="No credentials stored">No upstream credential has been added yet.</EmptyState>
      ) : (
        <Table head={["Name", "Service", "Header", "Secret", "Last used"]}>
          {credentials.map((c) => (
            <tr key={c.id}>
              <Td>{c.name}</Td>
              <Td className="font-mono text-xs">
                {c.scheme}://{c.host}:{c.port}
              </Td>
              <Td className="font-mono text-xs">{c.headerTemplate}</Td>
              <Td className="font-mono text-xs">••••••••</Td>
              <Td>{formatTime(c.lastUsedAt)}</Td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
