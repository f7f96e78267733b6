import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";
import { formatTime } from "@/components/format";
import { PolicyVersions } from "@/components/reports/policy-versions";
import { TimelineChart } from "@/components/reports/timeline-chart";
import { VerificationBlock } from "@/components/reports/verification-block";
import { BlastRadiusSummary } from "@/components/tasks/blast-radius";
import { Badge } from "@/components/ui/badge";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { dashboardCheckpointKeys } from "@/lib/audit/trusted-keys";
import { visible } from "@/lib/audit/view";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";
import { recordReportEvent } from "@/lib/reports/generate";
import { ReportsBusy } from "@/components/reports/busy";
import { loadTaskReport } from "@/lib/reports/task-report";
import { tokenEnd } from "@/lib/reports/token-end";

export const metadata: Metadata = { title: "Task report" };

const OUTCOME_TONE = { allow: "green", approved: "green", deny: "red", reject: "red", hold: "amber" } as const;
const tone = (o: string | null) => OUTCOME_TONE[o as keyof typeof OUTCOME_TONE] ?? "slate";

/** The per-task report (docs/audit.md, "Per-task reports"); the signed PDF has the same sections. */
export default async function TaskReportPage({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const actor = await requirePageActor("read");
  const { id } = await params;
  const sp = await searchParams;
  const asked = typeof sp.outcome === "string" && sp.outcome !== "" ? sp.outcome : null;
  const outcome = asked !== null && /^[a-z_]{1,32}$/.test(asked) ? asked : null;
  const page = typeof sp.page === "string" && /^\d{1,7}$/.test(sp.page) ? Number(sp.page) : 1;
  const db = getDb();
  const loaded = await loadTaskReport(db, actor, id, { checkpointKeys: dashboardCheckpointKeys(), outcome, page }).catch((error: unknown) => {
    if (isAppError(error) && error.code === "NOT_FOUND") notFound();
    // Every report slot is busy (lib/reports/slots.ts): said on the page, not a server error.
    if (isAppError(error) && error.code === "RATE_LIMITED") return { busy: error.userMessage };
    throw error;
  });
  if ("busy" in loaded) return <ReportsBusy message={loaded.busy} />;
  const report = loaded;
  await recordReportEvent(db, actor, report, { via: "dashboard", format: "html", outcome, page: report.decisions.page });
  const link = (o: string | null, p: number) => `/tasks/${report.task.id}/report?${new URLSearchParams({ ...(o ? { outcome: o } : {}), page: String(p) })}`;
  const d = report.decisions;
  return (
    <>
      <PageHeader
        title={`Report: ${visible(report.task.purpose)}`}
        description={<>Generated {formatTime(report.generatedAt)} by {report.generatedBy}. Opening this page is recorded in the audit.</>}
        actions={
          <Link className="rounded-md bg-brand-600 px-3 py-2 text-sm font-semibold text-white hover:bg-brand-700" href={`/tasks/${report.task.id}/report/pdf`} prefetch={false} data-testid="report-pdf-link">
            Signed PDF
          </Link>
        }
      />
      <dl className="grid max-w-4xl grid-cols-1 gap-4 rounded-lg bg-white p-6 text-sm shadow-sm ring-1 ring-slate-200 sm:grid-cols-3" data-testid="report-summary">
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Agent</dt>
          <dd>
            <Link className="text-brand-700 hover:underline" href={`/agents/${report.agent.id}`}>{report.agent.name}</Link> ({report.agent.status})
          </dd>
        </div>
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Owner</dt>
          <dd>{report.agent.owner}</dd>
        </div>
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Created</dt>
          <dd>{formatTime(report.task.createdAt)} by {report.task.createdBy ?? "unknown"}</dd>
        </div>
        <div>
          <dt className="text-xs font-semibold uppercase text-slate-500">Status</dt>
          <dd>{report.task.status}{report.task.endedReason ? ` (${report.task.endedReason})` : ""}</dd>
        </div>
        <div className="sm:col-span-2">
          <dt className="text-xs font-semibold uppercase text-slate-500">Scope</dt>
          <dd className="font-mono text-xs">{report.task.scope || "(nothing)"}</dd>
        </div>
      </dl>

      <section className="mt-8">
        <h2 className="mb-2 font-semibold">Decisions ({report.totalDecisions})</h2>
        <p className="mb-2 flex flex-wrap gap-2 text-sm" data-testid="report-outcomes">
          <Link href={link(null, 1)} className={outcome === null ? "font-semibold" : "text-brand-700 hover:underline"}>all</Link>
          {report.outcomes.map((o) => (
            <Link key={o.outcome} href={link(o.outcome, 1)} className={outcome === o.outcome ? "font-semibold" : "text-brand-700 hover:underline"}>
              <Badge tone={tone(o.outcome)}>{o.outcome}: {o.count}</Badge>
            </Link>
          ))}
        </p>
        {report.timeline ? <TimelineChart timeline={report.timeline} /> : <p className="text-sm text-slate-600">No proxy decisions for this task.</p>}
      </section>

      <section className="mt-8">
        <h2 className="mb-2 font-semibold">Verification</h2>
        <VerificationBlock v={report.verification} />
      </section>

      <section className="mt-8 max-w-4xl">
        <h2 className="mb-2 font-semibold">Policy versions ({report.policyVersions.length})</h2>
        <PolicyVersions versions={report.policyVersions} />
      </section>

      <section className="mt-8 max-w-4xl">
        <h2 className="mb-2 font-semibold">Blast radius (current policy)</h2>
        {report.blastRadius ? <BlastRadiusSummary radius={report.blastRadius} /> : <p className="text-sm text-red-700">The stored policy does not parse.</p>}
      </section>

      <section className="mt-8 max-w-4xl">
        <h2 className="mb-2 font-semibold">Approvals ({report.approvalCounts.total})</h2>
        {report.approvalCounts.total > 0 ? (
          <p className="mb-2 text-sm text-slate-600">{report.approvalCounts.byStatus.map((s) => `${s.status}: ${s.count}`).join(", ")}</p>
        ) : null}
        {report.approvals.length < report.approvalCounts.total ? (
          <p className="mb-2 text-sm text-slate-600" data-testid="report-approvals-cut">
            The first {report.approvals.length} held requests are listed, oldest first; every hold and decision is in the audit export (<code>bulkhead audit export --task {report.task.id}</code>).
          </p>
        ) : null}
        <Table label="Held requests" head={["Request", "Status", "Held", "Decided", "By", "Note"]}>
          {report.approvals.map((a) => (
            <tr key={a.id}>
              <Td className="break-all font-mono text-xs">{visible(`${a.method} ${a.url}`)}</Td>
              <Td><Badge tone={a.status === "approved" ? "green" : a.status === "pending" ? "amber" : "red"}>{a.status}</Badge></Td>
              <Td className="whitespace-nowrap">{formatTime(a.createdAt)}</Td>
              <Td className="whitespace-nowrap">{a.decidedAt ? `${formatTime(a.decidedAt)} (${((a.waitedMs ?? 0) / 1000).toFixed(1)} s)` : (a.cancelReason ?? "-")}</Td>
              <Td>{a.decidedBy ?? "-"}</Td>
              <Td>{a.note ? visible(a.note) : "-"}</Td>
            </tr>
          ))}
        </Table>
      </section>

      <section className="mt-8 max-w-4xl">
        <h2 className="mb-2 font-semibold">Tokens ({report.tokenCount}) and sandboxes ({report.sandboxes.length})</h2>
        {report.tokens.length < report.tokenCount ? (
          <p className="mb-2 text-sm text-slate-600">The first {report.tokens.length} tokens are listed; every one is in the audit export.</p>
        ) : null}
        <Table label="Tokens and sandboxes" head={["What", "Created", "Ended", "By"]}>
          {report.tokens.map((t) => (
            <tr key={t.jti}>
              <Td className="font-mono text-xs">token {t.jti}</Td>
              <Td>{formatTime(t.issuedAt)}</Td>
              <Td>{((end) => `${end.word} ${formatTime(end.at)}`)(tokenEnd(t, report.task, report.generatedAt))}</Td>
              <Td>{t.issuedBy ?? "-"}</Td>
            </tr>
          ))}
          {report.sandboxes.map((s) => (
            <tr key={s.name}>
              <Td className="font-mono text-xs">sandbox {s.name} ({s.sourceAddress ?? "address released"})</Td>
              <Td>{formatTime(s.createdAt)}</Td>
              <Td>{s.removedAt ? formatTime(s.removedAt) : "-"}</Td>
              <Td>-</Td>
            </tr>
          ))}
        </Table>
      </section>

      <section className="mt-8">
        <h2 className="mb-2 font-semibold">
          Decision log {outcome ? `(${outcome})` : ""} <span className="text-xs font-normal text-slate-500">page {d.page} of {d.pages}</span>
        </h2>
        {page > d.pages && d.rows.length > 0 ? (
          <p className="mb-2 text-sm text-amber-800" data-testid="report-page-beyond">
            There is no page {page}: the decision log has {d.pages} {d.pages === 1 ? "page" : "pages"}, and this is the last.
          </p>
        ) : null}
        <Table label="Audit events" head={["Seq", "Time", "Outcome", "Effect", "Request", "Reason"]}>
          {d.rows.map((r) => (
            <tr key={r.seq}>
              <Td><Link className="text-brand-700 hover:underline" href={`/audit/${r.seq}`}>{r.seq}</Link></Td>
              <Td className="whitespace-nowrap">{formatTime(r.at)}</Td>
              <Td><Badge tone={tone(r.outcome)}>{r.outcome ?? "-"}</Badge></Td>
              <Td>{r.effect ?? "-"}</Td>
              <Td className="break-all font-mono text-xs">{visible(`${r.method ?? ""} ${r.url ?? r.type}`)}</Td>
              <Td>{r.reason ? visible(r.reason) : "-"}</Td>
            </tr>
          ))}
        </Table>
        {d.rows.length === 0 ? (
          // An empty table alone read as "nothing happened" also when the outcome asked for is one
          // this task never had (a typo in the URL), or one that is not an outcome at all.
          <p className="mt-2 text-sm text-slate-600" data-testid="report-decisions-empty">
            {asked !== null && !report.outcomes.some((o) => o.outcome === asked) ? (
              <>
                No decision of this task has the outcome &ldquo;{visible(asked.slice(0, 40))}&rdquo;
                {report.outcomes.length > 0 ? `; its outcomes are ${report.outcomes.map((o) => o.outcome).join(", ")}` : ""}
                {outcome === null ? ", so all its decisions are listed" : ""}.{" "}
                {outcome !== null ? <Link className="text-brand-700 hover:underline" href={link(null, 1)}>Show all decisions</Link> : null}
              </>
            ) : (
              "The agent has made no request under this task yet: each request it sends through the proxy with the task's token is listed here."
            )}
          </p>
        ) : asked !== null && outcome === null ? (
          <p className="mt-2 text-sm text-slate-600" data-testid="report-decisions-empty">
            &ldquo;{visible(asked.slice(0, 40))}&rdquo; is not an outcome (outcomes are words such as allow, deny, hold), so all decisions are listed.
          </p>
        ) : null}
        <nav className="mt-2 flex gap-4 text-sm">
          {d.page > 1 ? <Link className="text-brand-700 hover:underline" href={link(outcome, d.page - 1)}>Previous page</Link> : null}
          {d.page < d.pages ? <Link className="text-brand-700 hover:underline" href={link(outcome, d.page + 1)} data-testid="report-next-page">Next page</Link> : null}
        </nav>
      </section>
    </>
  );
}
