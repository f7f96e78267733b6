import Link from "next/link";
import type { ReactNode } from "react";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { Table, Td } from "@/components/ui/table";
import type { ChainStatus } from "@/lib/audit/chain-status";
import type { AuditEventDetail } from "@/lib/audit/query";
import { visible } from "@/lib/audit/view";
import { AgentText } from "./agent-text";
import { ActorName, OUTCOME_TONE } from "./events-table";

function Field({ label, children, testId }: { label: string; children: ReactNode; testId?: string }) {
  return (
    <div className="py-2 sm:grid sm:grid-cols-4 sm:gap-4">
      <dt className="text-xs font-semibold uppercase text-slate-500">{label}</dt>
      <dd className="mt-1 text-sm sm:col-span-3 sm:mt-0" data-testid={testId}>
        {children ?? "—"}
      </dd>
    </div>
  );
}

const yes = (ok: boolean | null, good: string, bad: string, unknown = "not checked") =>
  ok === null ? <Badge tone="slate">{unknown}</Badge> : ok ? <Badge tone="green">{good}</Badge> : <Badge tone="red">{bad}</Badge>;

/** Every field of one event, its semantic actions and its place in the hash chain. */
export function AuditEventDetailView({ detail, status }: { detail: AuditEventDetail; status: ChainStatus }) {
  const e = detail.event;
  const c = detail.chain;
  const seq = BigInt(c.seq);
  const verified = status.verifiedThroughSeq !== null && seq <= BigInt(status.verifiedThroughSeq);
  const brokenHere = status.state === "broken" && status.broken && seq >= BigInt(status.broken.firstBadSeq);
  return (
    <div className="space-y-8">
      <dl className="max-w-4xl divide-y divide-slate-100 rounded-lg bg-white px-6 py-2 shadow-sm ring-1 ring-slate-200" data-testid="event-fields">
        <Field label="Time">{formatTime(e.at)}</Field>
        <Field label="Stored" testId="event-recorded-at">
          {e.recordedAt ? (
            <>
              {formatTime(e.recordedAt)}{" "}
              <span className="text-xs text-slate-500">(the database&apos;s clock, which no writer can set; the time above is the writer&apos;s)</span>
            </>
          ) : (
            <span className="text-xs text-slate-500">not kept (stored before the database recorded this time)</span>
          )}
        </Field>
        <Field label="Type">
          <span className="font-mono">{e.type}</span>
        </Field>
        <Field label="Outcome" testId="event-outcome">
          {e.outcome ? <Badge tone={OUTCOME_TONE[e.outcome] ?? "slate"}>{e.outcome}</Badge> : null}
        </Field>
        <Field label="Effect">{e.effect}</Field>
        <Field label="Actor" testId="event-actor">
          <ActorName actor={e.actor} />
          {/* A system actor named by its id is already shown as "system: <id>": its kind and id once. */}
          {e.actor.type === "system" && (e.actor.name ?? e.actor.id) === e.actor.id ? null : (
            <>
              {" "}
              <span className="text-xs text-slate-500">({e.actor.type}{e.actor.id ? `, ${e.actor.id}` : ""})</span>
            </>
          )}
        </Field>
        <Field label="Agent">
          {e.agent ? (
            <>
              <Link className="text-brand-700 hover:underline" href={`/agents/${e.agent.id}`}>
                {e.agent.name ?? e.agent.id}
              </Link>{" "}
              <Link className="text-xs text-slate-500 hover:underline" href={`/audit?agent=${e.agent.id}`}>
                all its events
              </Link>
            </>
          ) : null}
        </Field>
        <Field label="Task">
          {e.task ? (
            <>
              <Link className="text-brand-700 hover:underline" href={`/tasks/${e.task.id}`}>
                {e.task.purpose ?? e.task.id}
              </Link>{" "}
              <Link className="text-xs text-slate-500 hover:underline" href={`/audit?task=${e.task.id}`}>
                all its events
              </Link>
            </>
          ) : null}
        </Field>
        <Field label="Request" testId="event-request">
          {e.request ? (
            <span className="font-mono text-xs">
              {e.request.method} <AgentText text={e.request.url} />
              {e.request.service ? <span className="block text-slate-500">service {e.request.service}</span> : null}
              {e.request.code ? <span className="block text-slate-500">code {e.request.code}</span> : null}
            </span>
          ) : null}
        </Field>
        <Field label="Reason" testId="event-reason">
          <AgentText text={e.reason} />
        </Field>
        <Field label="Rule">{e.ruleId ? <span className="font-mono text-xs">{e.ruleId}</span> : null}</Field>
      </dl>

      <section>
        <h2 className="mb-2 font-semibold">Semantic actions{e.actions.length > 0 ? ` (${e.actions.length})` : ""}</h2>
        {e.actionsLeftOut > 0 ? (
          <p className="mb-2 text-sm text-amber-800" data-testid="event-actions-left-out">
            {e.actionsLeftOut} more action{e.actionsLeftOut === 1 ? " was" : "s were"} left out of this record when it was stored (the request carried {e.actions.length + e.actionsLeftOut}).
          </p>
        ) : null}
        {e.actions.length === 0 ? (
          <p className="text-sm text-slate-600">This event records no semantic actions.</p>
        ) : (
          <Table label="Classified actions" head={["Service", "Environment", "Operation", "Resource", "Effect"]}>
            {e.actions.map((a, i) => (
              <tr key={i} data-testid="event-action">
                <Td>{a.service}</Td>
                <Td>{a.environment}</Td>
                <Td className="font-mono text-xs">
                  <AgentText text={a.operation} />
                </Td>
                <Td className="font-mono text-xs">
                  <AgentText text={a.resource} />
                </Td>
                <Td>{a.effect}</Td>
              </tr>
            ))}
          </Table>
        )}
      </section>

      <section>
        <h2 className="mb-2 font-semibold">Place in the hash chain</h2>
        <dl className="max-w-4xl divide-y divide-slate-100 rounded-lg bg-white px-6 py-2 shadow-sm ring-1 ring-slate-200" data-testid="event-chain">
          <Field label="Seq">{c.seq}</Field>
          <Field label="Previous hash">
            <span className="font-mono text-xs break-all">{c.prevHash ?? "—"}</span> {yes(c.linksToPrevious, "matches the previous event", "does not match the previous event")}
          </Field>
          <Field label="Hash">
            <span className="font-mono text-xs break-all">{c.hash ?? "—"}</span> {yes(c.hashMatches, "recomputed: matches", "recomputed: does not match")}
          </Field>
          <Field label="Checkpoint" testId="event-checkpoint">
            {c.checkpoint ? (
              <>
                Covered by checkpoint #{c.checkpoint.id} at seq {c.checkpoint.seq}, signed {formatTime(c.checkpoint.createdAt)} with key{" "}
                <span className="font-mono text-xs">{c.checkpoint.keyId}</span> {yes(c.checkpoint.matchesChain, "agrees with the chain", "disagrees with the chain")}{" "}
                {yes(c.checkpoint.signatureValid, "signature valid", "signature NOT valid", "signature not checked")}
              </>
            ) : (
              "Not yet covered by a signed checkpoint (the worker signs the chain's head every few seconds)."
            )}
          </Field>
          <Field label="Chain verification">
            {brokenHere ? (
              <span className="text-red-800">The chain is broken at seq {status.broken!.firstBadSeq}, at or before this event.</span>
            ) : verified ? (
              `Verified (every event up to seq ${status.verifiedThroughSeq}) at ${formatTime(status.checkedAt)}.`
            ) : (
              "Not verified yet: newer than the last verification."
            )}
          </Field>
        </dl>
        <nav aria-label="Neighbouring events" className="mt-3 flex gap-3 text-sm">
          {detail.neighbours.newer ? (
            <Link className="text-brand-700 hover:underline" href={`/audit/${detail.neighbours.newer}`}>
              ← Newer event #{detail.neighbours.newer}
            </Link>
          ) : null}
          {detail.neighbours.older ? (
            <Link className="text-brand-700 hover:underline" href={`/audit/${detail.neighbours.older}`}>
              Older event #{detail.neighbours.older} →
            </Link>
          ) : null}
        </nav>
      </section>

      <section>
        <h2 className="mb-2 font-semibold">Recorded data</h2>
        <p className="mb-2 text-xs text-slate-500">As stored. Values may come from the agent; control characters are shown escaped.</p>
        <pre data-testid="event-data" className="max-h-[32rem] overflow-auto rounded-lg bg-slate-900 p-4 text-xs text-slate-100">
          {/* JSON.stringify escapes control characters inside strings; its own line breaks are layout. */}
          {(JSON.stringify(e.data, null, 2) ?? "").split("\n").map((t) => visible(t)).join("\n")}
        </pre>
      </section>
    </div>
  );
}
