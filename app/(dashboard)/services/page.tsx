import type { Metadata } from "next";
import { AddCredentialForm } from "@/components/credentials/add-credential-form";
import { CredentialRowActions } from "@/components/credentials/credential-row-actions";
import { formatTime } from "@/components/format";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { listCredentials } from "@/lib/vault";
import { addCredentialAction, deleteCredentialAction, rotateCredentialAction } from "./actions";

export const metadata: Metadata = { title: "Services & Credentials" };

export default async function ServicesPage() {
  const actor = await requirePageActor("read");
  const credentials = await listCredentials(getDb(), actor);
  const canWrite = roleCan(actor.role, "credentials:write");
  return (
    <>
      <PageHeader
        title="Services & Credentials"
        description="Upstream credentials live here, encrypted, and are injected by the proxy for their exact service. Agents never see them, and nobody can read a secret back."
      />
      {canWrite ? <AddCredentialForm action={addCredentialAction} /> : null}
      {credentials.length === 0 ? (
        <EmptyState title="No credentials stored">No upstream credential has been added yet.</EmptyState>
      ) : (
        <Table head={["Name", "Service", "Header", "Secret", "Rotated", "Last used", ...(canWrite ? ["Actions"] : [])]}>
          {credentials.map((c) => (
            <tr key={c.id}>
              <Td>{c.name}</Td>
              <Td className="font-mono text-xs">{c.service}</Td>
              <Td className="font-mono text-xs">{c.headerTemplate}</Td>
              <Td className="font-mono text-xs">{c.secret}</Td>
              <Td className="whitespace-nowrap">{formatTime(c.rotatedAt)}</Td>
              <Td className="whitespace-nowrap">{formatTime(c.lastUsedAt)}</Td>
              {canWrite ? (
                <Td>
                  <CredentialRowActions id={c.id} name={c.name} rotate={rotateCredentialAction} remove={deleteCredentialAction} />
                </Td>
              ) : null}
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
