import Link from "next/link";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { Table, Td } from "@/components/ui/table";
import { mostSevereFirst } from "@/lib/approvals/severity";
import type { AuditEventView } from "@/lib/audit/view";
import { AgentText } from "./agent-text";

export const OUTCOME_TONE: Record<string, "green" | "red" | "amber" | "slate" | "blue"> = {
  allow: "green",
  approve: "green",
  forwarded: "green",
  deny: "red",
  reject: "red",
  failed: "red",
  hold: "amber",
  cancel: "amber",
};

/** Who did it, by name, linked where the dashboard has a page or a filter for it. */
export function ActorName({ actor }: { actor: AuditEventView["actor"] }) {
  const name = actor.name ?? actor.id ?? "—";
  if (actor.type === "user" && actor.id) {
    return (
      <Link className="text-brand-700 hover:underline" href={`/audit?user=${encodeURIComponent(actor.id)}`} title="Events by this user">
        {name}
      </Link>
    );
  }
  if (actor.type === "agent" && actor.id) {
    return (
      <Link className="text-brand-700 hover:underline" href={`/agents/${encodeURIComponent(actor.id)}`}>
        {name}
      </Link>
    );
  }
  return (
    <span>
      {actor.type === "api_key" ? "API key " : actor.type === "system" ? "system: " : ""}
      {name}
    </span>
  );
}

export function AuditEventsTable({ events }: { events: AuditEventView[] }) {
  return (
    <Table label="Audit events" head={["Seq", "Time (UTC)", "Event", "Outcome", "Actor", "Agent / task", "Request", "Reason"]}>
      {events.map((e) => (
        <tr key={e.seq} data-testid="audit-row" data-seq={e.seq}>
          <Td className="font-mono text-xs">
            <Link className="text-brand-700 hover:underline" href={`/audit/${e.seq}`} aria-label={`Event ${e.seq} details`}>
              #{e.seq}
            </Link>
          </Td>
          <Td className="whitespace-nowrap text-xs">{formatTime(e.at).replace(" UTC", "")}</Td>
          <Td className="font-mono text-xs">{e.type}</Td>
          <Td>
            {e.outcome ? <Badge tone={OUTCOME_TONE[e.outcome] ?? "slate"}>{e.outcome}</Badge> : "—"}
            {e.effect ? <span className="mt-1 block text-xs text-slate-500">{e.effect}</span> : null}
          </Td>
          <Td className="text-xs">
            <ActorName actor={e.actor} />
          </Td>
          <Td className="max-w-48 text-xs">
            {e.agent ? (
              <Link className="text-brand-700 hover:underline" href={`/agents/${e.agent.id}`}>
                {e.agent.name ?? e.agent.id}
              </Link>
            ) : null}
            {e.task ? (
              <Link className="mt-1 block text-slate-600 hover:underline" href={`/tasks/${e.task.id}`} title={e.task.id}>
                {e.task.purpose ?? e.task.id}
              </Link>
            ) : null}
          </Td>
          <Td className="max-w-md text-xs">
            {e.request ? (
              <span className="font-mono">
                {e.request.method ? <span className="font-semibold">{e.request.method} </span> : null}
                <AgentText text={e.request.url} />
              </span>
            ) : null}
            {mostSevereFirst(e.actions).slice(0, 3).map((a, i) => (
              <span key={i} className="mt-1 block text-slate-600">
                {a.service}/{a.environment}: <AgentText text={a.operation} /> <AgentText className="font-mono" text={a.resource} /> ({a.effect})
              </span>
            ))}
            {e.actions.length + e.actionsLeftOut > 3 ? (
              <span className="block text-slate-500">
                +{Math.max(e.actions.length - 3, 0) + e.actionsLeftOut} more actions{e.actionsLeftOut > 0 ? ` (${e.actionsLeftOut} not in the record)` : ""}
              </span>
            ) : null}
          </Td>
          <Td className="max-w-md text-xs">
            <AgentText text={e.reason} />
          </Td>
        </tr>
      ))}
    </Table>
  );
}
