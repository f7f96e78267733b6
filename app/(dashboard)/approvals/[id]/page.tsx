import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";
import { ActionsList } from "@/components/approvals/actions-table";
import { AgentData } from "@/components/approvals/agent-data";
import { BodyBlock } from "@/components/approvals/body-block";
import { Countdown } from "@/components/approvals/countdown";
import { DecideForm } from "@/components/approvals/decide-form";
import { LiveRefresh } from "@/components/approvals/live-refresh";
import { approvalsPulse } from "@/lib/approvals/live";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { PageHeader } from "@/components/ui/page-header";
import { previewApproveAndAllow } from "@/lib/approvals/allow-rule";
import { getApprovalCard } from "@/lib/approvals/card";
import { visible } from "@/lib/audit/view";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";
import { decideApprovalAction } from "../actions";

export const metadata: Metadata = { title: "Approval" };

export default async function ApprovalCardPage({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: Promise<{ body?: string }> }) {
  const actor = await requirePageActor("read");
  const { id } = await params;
  const { body } = await searchParams;
  // Read before the page's data: anything that changes after it makes the live stream's version differ.
  const { fingerprint: version } = await approvalsPulse(getDb(), actor);
  const card = await getApprovalCard(getDb(), actor, id, { fullBody: body === "full" }).catch((error: unknown) => {
    if (isAppError(error) && error.code === "NOT_FOUND") notFound();
    throw error;
  });
  const canDecide = roleCan(actor.role, "approvals:decide") && card.status === "pending";
  const r = card.request;
  const allow = canDecide ? await previewApproveAndAllow(getDb(), actor, card.id) : null;
  const allowDiff = allow?.possible ? (
    <AgentData block>
      {allow.added.map((line, i) => (
        <span key={i} className={line.startsWith("+") ? "block text-green-800" : "block text-red-800"}>
          {visible(line)}
        </span>
      ))}
    </AgentData>
  ) : null;
  return (
    <>
      <LiveRefresh version={version} />
      <PageHeader
        title="Held request"
        description="Read what the agent asked for. Values in dashed boxes marked AGENT come from the agent's request: they are data, not Bulkhead's words."
        actions={<Link className="text-sm underline" href="/approvals">All approvals</Link>}
      />
      <div className="grid gap-6 lg:grid-cols-2" data-testid="approval-card" data-status={card.status}>
        <section>
          <h2 className="mb-2 text-base font-semibold">Status</h2>
          <p className="text-sm" data-testid="card-status">
            <Badge tone={card.status === "pending" ? "amber" : card.status === "cancelled" || card.status === "denied" ? "red" : "slate"}>{card.status}</Badge>{" "}
            {card.status === "pending" ? <Countdown until={card.expiresAt} /> : card.statusText}
          </p>
          {card.required > 1 || card.votes.length > 0 ? (
            <p className="mt-1 text-sm">
              Needs {card.required} distinct {card.required === 1 ? "approver" : "approvers"}; approved so far by {card.votes.length === 0 ? "nobody" : card.votes.map((v) => v.by).join(", ")}.
            </p>
          ) : null}
          {card.decision?.by ? (
            <p className="mt-1 text-sm">
              Decided by {card.decision.by}
              {card.decision.at ? ` at ${formatTime(new Date(card.decision.at))}` : ""}
              {/* Shown as the agent's words are: bidirectional and invisible characters spelled out. */}
              {card.decision.note ? `, note: ${visible(card.decision.note)}` : ""}
            </p>
          ) : null}
          <h2 className="mb-2 mt-4 text-base font-semibold">Task</h2>
          <dl className="grid grid-cols-[9rem_1fr] gap-x-2 gap-y-1 text-sm">
            <dt className="text-slate-600">Purpose</dt>
            <dd data-testid="task-purpose">{card.task.purpose}</dd>
            <dt className="text-slate-600">Agent</dt>
            <dd>{card.agent.name}</dd>
            <dt className="text-slate-600">Owner</dt>
            <dd>{card.agent.owner ?? "none"}</dd>
            <dt className="text-slate-600">Task created by</dt>
            <dd>{card.task.createdBy ?? "unknown"}</dd>
            <dt className="text-slate-600">Scope</dt>
            <dd className="font-mono text-xs">{card.task.scope || "(allows nothing)"}</dd>
            <dt className="text-slate-600">Policy version</dt>
            <dd>
              {card.task.policyVersion ?? "unknown"}
              {card.task.policyVersion !== null && card.task.policyVersion !== card.task.currentPolicyVersion ? ` (now ${card.task.currentPolicyVersion})` : ""}
            </dd>
          </dl>
          <h2 className="mb-2 mt-4 text-base font-semibold">What it does ({card.actions.length} action{card.actions.length === 1 ? "" : "s"})</h2>
          <ActionsList actions={card.actions} />
          <h2 className="mb-2 mt-4 text-base font-semibold">Why it was held</h2>
          <p className="text-sm">The policy sent this request to a person. The rule&apos;s reason, as recorded:</p>
          <AgentData block>{card.reason}</AgentData>
        </section>
        <section>
          <h2 className="mb-2 text-base font-semibold">The request</h2>
          <dl className="grid grid-cols-[6rem_1fr] gap-x-2 gap-y-1 text-sm" data-testid="request">
            <dt className="text-slate-600">Method</dt>
            <dd className="font-mono text-xs">{r.method}</dd>
            <dt className="text-slate-600">Host</dt>
            <dd className="font-mono text-xs">
              {r.scheme}://{r.host}:{r.port}
            </dd>
            <dt className="text-slate-600">Path</dt>
            <dd>
              <AgentData>{r.path}</AgentData>
            </dd>
            {r.query ? (
              <>
                <dt className="text-slate-600">Query</dt>
                <dd>
                  <AgentData>{r.query}</AgentData>
                </dd>
              </>
            ) : null}
            {Object.entries(r.headers).map(([k, v]) => (
              <div key={k} className="contents">
                <dt className="font-mono text-xs text-slate-600">{k}</dt>
                <dd>
                  <AgentData>{v}</AgentData>
                </dd>
              </div>
            ))}
          </dl>
          <h3 className="mb-1 mt-3 text-sm font-semibold">Body</h3>
          <BodyBlock body={r.body} fullHref={`/approvals/${card.id}?body=full`} />
          {canDecide ? (
            <div className="mt-6">
              <h2 className="mb-2 text-base font-semibold">Decide</h2>
              {card.fourEyes ? (
                <p data-testid="four-eyes-notice" className="mb-3 rounded-md bg-amber-50 p-3 text-sm text-amber-900 ring-1 ring-amber-200">
                  {card.fourEyes}
                </p>
              ) : null}
              <DecideForm id={card.id} action={decideApprovalAction} restate={<ActionsList actions={card.actions} />} irreversible={card.effect === "irreversible"} allowDiff={allowDiff} />
            </div>
          ) : null}
        </section>
      </div>
    </>
  );
}
