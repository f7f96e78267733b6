import type { Metadata } from "next";
import { formatTime } from "@/components/format";
import { SimpleActionButton } from "@/components/tasks/simple-action-button";
import { Badge } from "@/components/ui/badge";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { CreateWebhookForm } from "@/components/webhooks/create-webhook-form";
import { loadAppConfig } from "@/lib/config/app";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { listDeliveries, listWebhooks } from "@/lib/webhooks/webhooks";
import { createWebhookAction, deleteWebhookAction } from "./actions";

export const metadata: Metadata = { title: "Webhooks" };

const TONE = { pending: "amber", delivered: "green", failed: "red" } as const;

export default async function WebhooksPage() {
  const actor = await requirePageActor("settings:write");
  const db = getDb();
  const [hooks, deliveries] = await Promise.all([listWebhooks(db, actor, loadAppConfig().webhooks), listDeliveries(db, actor, { limit: 100 })]);
  return (
    <>
      <PageHeader
        title="Webhooks"
        description="Tell people a request waits: each hold, decision, timeout and cancellation is POSTed, signed, to these addresses and retried with backoff. The message links to the approval card; deciding always needs sign-in."
      />
      <CreateWebhookForm action={createWebhookAction} allowedNetworks={loadAppConfig().webhooks.allowedNetworks} />
      {hooks.length === 0 ? (
        <EmptyState title="No webhooks">Add one to be told when a request is held.</EmptyState>
      ) : (
        <Table label="Webhooks" head={["Name", "Host", "Format", "Events", "Added", ""]}>
          {hooks.map((w) => (
            <tr key={w.id}>
              <Td>{w.name}</Td>
              <Td className="text-xs">
                <span className="font-mono">{w.host}</span>
                {w.refused ? (
                  <p className="mt-1 max-w-sm font-sans text-red-700" data-testid="webhook-refused">
                    {`Not delivered: ${w.refused}`}
                  </p>
                ) : null}
              </Td>
              <Td>{w.format}</Td>
              <Td className="text-xs">{w.events.join(", ")}</Td>
              <Td className="whitespace-nowrap">{formatTime(new Date(w.createdAt))}</Td>
              <Td>
                <SimpleActionButton action={deleteWebhookAction} fields={{ id: w.id }} label="Remove" variant="danger" confirm={`Remove webhook ${w.name}?`} />
              </Td>
            </tr>
          ))}
        </Table>
      )}
      <h2 className="mb-2 mt-8 font-semibold">Deliveries</h2>
      {deliveries.length === 0 ? (
        <EmptyState title="Nothing sent yet">Deliveries appear here as approvals are held and decided.</EmptyState>
      ) : (
        <Table label="Deliveries" head={["When", "Webhook", "Event", "Status", "Attempts", "Last answer", "Next try"]}>
          {deliveries.map((d) => (
            <tr key={d.id} data-testid="delivery-row">
              <Td className="whitespace-nowrap">{formatTime(new Date(d.createdAt))}</Td>
              <Td>{d.webhook}</Td>
              <Td>
                <a className="underline" href={`/approvals/${d.approvalId}`}>
                  {d.event}
                </a>
              </Td>
              <Td>
                <Badge tone={TONE[d.status as keyof typeof TONE] ?? "slate"}>{d.status}</Badge>
              </Td>
              <Td>{d.attempts}</Td>
              <Td className="text-xs">{d.lastError ?? (d.lastStatus ? `HTTP ${d.lastStatus}` : "")}</Td>
              <Td className="whitespace-nowrap">{d.nextAttemptAt ? formatTime(new Date(d.nextAttemptAt)) : ""}</Td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
