import type { ApprovalCard } from "@/lib/approvals/card";
import { effectSummary, mostSevereFirst } from "@/lib/approvals/severity";
import { Badge } from "@/components/ui/badge";
import { AgentData, PlainLine } from "./agent-data";

const TONE = { read: "slate", write: "blue", destructive: "amber", irreversible: "red" } as const;

/**
 * Every semantic action of the request as structured fields, with its plain-language line: most
 * severe first, under a count per effect, so the action that cannot be undone is the first thing
 * read however many harmless ones the agent put before it.
 */
export function ActionsList({ actions }: { actions: ApprovalCard["actions"] }) {
  if (actions.length === 0) return <p className="text-sm text-slate-600">No actions were recorded for this request.</p>;
  return (
    <>
      <p className="mb-2 text-sm font-semibold" data-testid="effect-summary">
        {actions.length === 1 ? "1 action" : `${actions.length} actions`}: {effectSummary(actions)}. Most severe first.
      </p>
      <ol className="space-y-2" data-testid="actions">
        {mostSevereFirst(actions).map((a, i) => (
          <li key={i} data-testid="action" className="rounded-md border border-slate-200 p-2 text-sm">
            <dl className="grid grid-cols-[8rem_1fr] gap-x-2 gap-y-1">
              <dt className="text-slate-600">Effect</dt>
              <dd>
                <Badge tone={TONE[a.effect] ?? "slate"}>{a.effect}</Badge>
              </dd>
              <dt className="text-slate-600">Service</dt>
              <dd className="font-mono text-xs">{a.service}</dd>
              <dt className="text-slate-600">Environment</dt>
              <dd className="font-mono text-xs">{a.environment}</dd>
              <dt className="text-slate-600">Operation</dt>
              <dd>
                <AgentData>{a.operation}</AgentData>
              </dd>
              <dt className="text-slate-600">Resource</dt>
              <dd>
                <AgentData>{a.resource}</AgentData>
              </dd>
            </dl>
            {a.line ? (
              <p className="mt-2">
                <PlainLine parts={a.line} />
              </p>
            ) : null}
          </li>
        ))}
      </ol>
    </>
  );
}
