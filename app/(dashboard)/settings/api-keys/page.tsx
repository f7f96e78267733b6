import type { Metadata } from "next";
import { CreateApiKeyForm } from "@/components/apikeys/create-api-key-form";
import { RevokeApiKeyButton } from "@/components/apikeys/revoke-api-key-button";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { EmptyState } from "@/components/ui/empty-state";
import { ListPager } from "@/components/ui/list-pager";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { listApiKeysPage } from "@/lib/apikeys";
import { isAppError } from "@/lib/errors/app-error";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { createApiKeyAction, revokeApiKeyAction } from "./actions";

export const metadata: Metadata = { title: "API keys" };

const STATUS_TONE = { active: "green", expired: "amber", revoked: "red" } as const;

/** Keys a page of the list shows (the API's pages hold up to 500). */
const PAGE_SIZE = 100;

export default async function ApiKeysPage({ searchParams }: { searchParams: Promise<{ cursor?: string }> }) {
  const actor = await requirePageActor("users:write");
  const { cursor: rawCursor } = await searchParams;
  const cursor = typeof rawCursor === "string" && rawCursor !== "" ? rawCursor : undefined;
  // A page position that is not one is said on the page, never read as the first page.
  const { keys, nextCursor, problem } = await listApiKeysPage(getDb(), actor, { cursor, limit: PAGE_SIZE }).then(
    (page) => ({ keys: page.items, nextCursor: page.nextCursor, problem: null }),
    (error: unknown) => {
      if (isAppError(error) && error.code === "INVALID_INPUT") return { keys: [], nextCursor: null, problem: error.userMessage };
      throw error;
    },
  );
  return (
    <>
      <PageHeader
        title="API keys"
        description="Keys for the admin API (Authorization: Bearer …). A key acts with its role, never more than its creator's, and stops working when revoked or expired; disabling its creator revokes it."
      />
      <CreateApiKeyForm action={createApiKeyAction} />
      {problem ? (
        <p role="alert" className="mb-4 text-sm text-red-700">
          {problem}
        </p>
      ) : keys.length === 0 ? (
        <EmptyState title="No API keys">Create one for scripts and CI that call the API.</EmptyState>
      ) : (
        <Table label="API keys" head={["Name", "Key", "Role", "Status", "Created", "Expires", "Last used", ""]}>
          {keys.map((k) => (
            <tr key={k.id}>
              <Td>
                {k.name}
                {k.createdBy ? <p className="text-xs text-slate-500">by {k.createdBy}</p> : null}
              </Td>
              <Td className="font-mono text-xs">{k.prefix}</Td>
              <Td>
                <Badge tone={k.role === "admin" ? "blue" : "slate"}>{k.role}</Badge>
                {k.actsAs !== k.role && k.status === "active" ? (
                  <p className="mt-1 text-xs text-amber-800" data-testid="api-key-acts-as">
                    {k.actsAs === null ? "refused: its creator is disabled" : `acts as ${k.actsAs}: its creator's role now`}
                  </p>
                ) : null}
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
      {problem ? null : <ListPager base="/settings/api-keys" filters={{}} cursor={cursor} nextCursor={nextCursor} nextLabel="Older keys" endLabel="Oldest key reached." />}
    </>
  );
}
