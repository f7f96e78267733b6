import type { Metadata } from "next";
import Link from "next/link";
import { ZodError } from "zod";
import { ChainStatusBanner } from "@/components/audit/chain-status-banner";
import { AuditEventsTable } from "@/components/audit/events-table";
import { AuditFilterForm } from "@/components/audit/filter-form";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { chainStatus } from "@/lib/audit/chain-status";
import { filterParams } from "@/lib/audit/filter";
import { listAuditEvents, type AuditPage } from "@/lib/audit/query";
import { AppError } from "@/lib/errors/app-error";
import { dashboardCheckpointKeys } from "@/lib/audit/trusted-keys";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { SiemStatusLine } from "@/components/audit/siem-status";
import { readSiemStatus } from "@/lib/audit/siem/status";

export const metadata: Metadata = { title: "Audit" };

type Search = Record<string, string | string[] | undefined>;

function single(params: Search): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(filterParams(params)).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : v]));
}

function query(values: Record<string, string | undefined>, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && !["cursor", "after", "limit"].includes(k)) p.set(k, v);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

/** Filter values no event in the log has (types and outcomes are open-ended, so never refused): said, not silent. */
function UnmatchedValues({ what, testId, sentences }: { what: string; testId: string; sentences: string[] }) {
  if (sentences.length === 0) return null;
  return (
    <div role="status" className="mb-4 rounded-md bg-amber-50 px-4 py-3 text-sm text-amber-900 ring-1 ring-amber-600/30" data-testid={testId}>
      <p className="font-semibold">
        Part of the {what} filter matches nothing (the other {what}s are shown):
      </p>
      <ul className="mt-1 list-disc pl-5">
        {sentences.map((p) => (
          <li key={p}>{p}</li>
        ))}
      </ul>
    </div>
  );
}

export default async function AuditPage({ searchParams }: { searchParams: Promise<Search> }) {
  const actor = await requirePageActor("read");
  const params = await searchParams;
  const values = single(params);
  const db = getDb();
  let page: AuditPage | null = null;
  let problems: string[] = [];
  try {
    page = await listAuditEvents(db, actor, filterParams(params), "dashboard");
  } catch (error) {
    // A search stopped at its time limit, or one too many at once (lib/audit/query.ts), is said on the page.
    if (error instanceof AppError && (error.code === "RATE_LIMITED" || error.code === "INVALID_INPUT")) problems = [error.userMessage];
    else if (!(error instanceof ZodError)) throw error;
    else problems = error.issues.map((i) => i.message);
  }
  const status = await chainStatus(db, { checkpointKeys: dashboardCheckpointKeys() });
  const filtered = Object.keys(values).some((k) => !["cursor", "after", "limit"].includes(k));
  const exportHref = (format: string) => `/api/v1/audit/export${query(values, { format })}`;
  return (
    <>
      <PageHeader
        title="Audit"
        description="Every decision and every admin change, newest first, hash-chained: rows cannot be edited or deleted unnoticed. Reading this page is recorded too."
        actions={
          problems.length > 0 ? (
            // Links with filters the export refuses downloaded its 400 answer as the file.
            <p className="text-sm text-slate-600" data-testid="export-unavailable">
              Export: correct the filters first.
            </p>
          ) : (
            <div className="flex items-center gap-2 text-sm" aria-label="Export">
              <span className="text-slate-600">Export {filtered ? "these filters" : "everything"}:</span>
              {[
                ["csv", "CSV"],
                ["jsonl", "JSON Lines"],
                ["ocsf", "OCSF"],
              ].map(([format, label]) => (
                <a key={format} href={exportHref(format!)} download className="rounded-md bg-white px-2 py-1 font-semibold ring-1 ring-inset ring-slate-300 hover:bg-slate-50">
                  {label}
                </a>
              ))}
            </div>
          )
        }
      />
      <ChainStatusBanner status={status} />
      <SiemStatusLine status={readSiemStatus()} />
      <AuditFilterForm values={values} />
      {problems.length > 0 ? (
        <div role="alert" className="mb-4 rounded-md bg-red-50 px-4 py-3 text-sm text-red-900 ring-1 ring-red-600/30">
          <p className="font-semibold">These filters cannot be used:</p>
          <ul className="mt-1 list-disc pl-5">
            {problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </div>
      ) : null}
      {page && !page.nothing ? (
        <>
          <UnmatchedValues what="type" testId="unmatched-types" sentences={page.unmatchedTypes} />
          <UnmatchedValues what="outcome" testId="unmatched-outcomes" sentences={page.unmatchedOutcomes} />
        </>
      ) : null}
      {page && page.events.length === 0 ? (
        filtered ? (
          <EmptyState title="No events match these filters" action={<Link className="text-brand-700 hover:underline" href="/audit">Clear the filters</Link>}>
            {page.nothing ? `Nothing can match: ${page.nothing}.` : "Try a wider time range or fewer filters."}
          </EmptyState>
        ) : (
          <EmptyState title="No events">Nothing has been recorded yet.</EmptyState>
        )
      ) : null}
      {page && page.events.length > 0 ? (
        <>
          <AuditEventsTable events={page.events} />
          <nav aria-label="Pages" className="mt-4 flex gap-3 text-sm">
            {page.prevCursor ? (
              <>
                <Link className="text-brand-700 hover:underline" href={`/audit${query(values)}`}>
                  Newest
                </Link>
                <Link className="text-brand-700 hover:underline" href={`/audit${query(values, { after: page.prevCursor })}`}>
                  ← Newer
                </Link>
              </>
            ) : null}
            {page.nextCursor ? (
              <Link className="text-brand-700 hover:underline" href={`/audit${query(values, { cursor: page.nextCursor })}`}>
                Older →
              </Link>
            ) : (
              <span className="text-slate-500">Oldest matching event reached.</span>
            )}
          </nav>
        </>
      ) : null}
    </>
  );
}
