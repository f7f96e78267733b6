import type { Metadata } from "next";
import { CreateApiKeyForm } from "@/components/apikeys/create-api-key-form";
import { RevokeApiKeyButton } from "@/components/apikeys/revoke-api-key-button";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { listApiKeys } from "@/lib/apikeys";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { createApiKeyAction, revokeApiKeyAction } from "./actions";

export const metadata: Metadata = { title: "API keys" };

const STATUS_TONE = { active: "green", expired: "amber", revoked: "red" } as const;

export default async function ApiKeysPage() {
  const actor = await requirePageActor("users:write");
  const keys = await listApiKeys(getDb(), actor);
  return (
    <>
      <PageHeader
        title="API keys"
        description="Keys for the admin API (Authorization: Bearer …). A key acts with its role, never more than its creator's, and stops working when revoked or expired; disabling its creator revokes it."
      />
      <CreateApiKeyForm action={createApiKeyAction} />
      {keys.length === 0 ? (
        <EmptyState title="No API keys">Create one for scripts and CI that call the API.</EmptyState>
      ) : (
        <Table head={["Name", "Key", "Role", "Status", "Created", "Expires", "Last used", ""]}>
          {keys.map((k) => (
            <tr key={k.id}>
              <Td>
                {k.name}
                {k.createdBy ? <p className="text-xs text-slate-500">by {k.createdBy}</p> : null}
              </Td>
              <Td className="font-mono text-xs">{k.prefix}</Td>
              <Td>
                <Badge tone={k.role === "admin" ? "blue" : "slate"}>{k.role}</Badge>
              </Td>
              <Td>
                <Badge tone={STATUS_TONE[k.status]}>{k.status}</Badge>
              </Td>
              <Td className="whitespace-nowrap">{formatTime(k.createdAt)}</Td>
              <Td className="whitespace-nowrap">{formatTime(k.expiresAt)}</Td>
              <Td className="whitespace-nowrap">{formatTime(k.lastUsedAt)}</Td>
              <Td>{k.status === "revoked" ? null : <RevokeApiKeyButton id={k.id} name={k.name} action={revokeApiKeyAction} />}</Td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
