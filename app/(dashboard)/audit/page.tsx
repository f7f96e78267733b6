import type { Metadata } from "next";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { listAuditEvents } from "@/lib/audit/query";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";

export const metadata: Metadata = { title: "Audit" };

const TONE = { allow: "green", deny: "red", hold: "amber" } as const;

export default async function AuditPage({ searchParams }: { searchParams: Promise<{ type?: string }> }) {
  const actor = await requirePageActor("read");
  const { type } = await searchParams;
  const filter = typeof type === "string" && type.length <= 100 ? type : undefined;
  const events = await listAuditEvents(getDb(), actor, { type: filter });
  return (
    <>
      <PageHeader title="Audit" description="Every decision and every admin change, newest first. Rows cannot be edited or deleted." />
      <form className="mb-4 flex gap-2" action="/audit">
        <label htmlFor="type" className="sr-only">
          Event type
        </label>
        <input id="type" name="type" defaultValue={filter} placeholder="Event type prefix, e.g. agent." className="w-full max-w-sm rounded-md border-0 px-3 py-2 text-sm ring-1 ring-inset ring-slate-300" />
        <button type="submit" className="rounded-md bg-white px-3 py-2 text-sm font-semibold ring-1 ring-inset ring-slate-300">
          Filter
        </button>
      </form>
      {events.length === 0 ? (
        <EmptyState title="No events">Nothing has been recorded{filter ? " with that type" : ""} yet.</EmptyState>
      ) : (
        <Table head={["Time", "Event", "Actor", "Outcome", "Reason"]}>
          {events.map((e) => (
            <tr key={e.id.toString()}>
              <Td className="whitespace-nowrap">{formatTime(e.at)}</Td>
              <Td className="font-mono text-xs">{e.type}</Td>
              <Td className="text-xs">
                {e.actorType}
                {e.actorId ? <span className="block font-mono text-slate-500">{e.actorId}</span> : null}
              </Td>
              <Td>{e.outcome ? <Badge tone={TONE[e.outcome as keyof typeof TONE] ?? "slate"}>{e.outcome}</Badge> : "—"}</Td>
              <Td className="max-w-md text-xs">{e.reason ?? ""}</Td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
