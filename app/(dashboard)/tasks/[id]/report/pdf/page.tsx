import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";
import { PageHeader } from "@/components/ui/page-header";
import { dashboardCheckpointKeys } from "@/lib/audit/trusted-keys";
import { requirePageActor } from "@/lib/auth/current";
import { loadReportKeyConfig } from "@/lib/config/process-keys";
import { getDb } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";
import { keepReport } from "@/lib/reports/cache";
import { ReportsBusy } from "@/components/reports/busy";
import { generateTaskReport } from "@/lib/reports/generate";

export const metadata: Metadata = { title: "Signed task report" };

/**
 * Generates the signed PDF (recorded in the audit) and offers it with its detached signature as
 * two downloads of the same report, kept for 15 minutes for this person only.
 */
export default async function TaskReportPdfPage({ params }: { params: Promise<{ id: string }> }) {
  const actor = await requirePageActor("read");
  const { id } = await params;
  const result = await generateTaskReport(getDb(), actor, id, { checkpointKeys: dashboardCheckpointKeys(), reportKey: loadReportKeyConfig(), via: "dashboard" }).catch((error: unknown) => {
    if (isAppError(error) && error.code === "NOT_FOUND") notFound();
    // Every report slot is busy (lib/reports/slots.ts): said on the page, not a server error.
    if (isAppError(error) && error.code === "RATE_LIMITED") return { busy: error.userMessage };
    throw error;
  });
  if ("busy" in result) return <ReportsBusy message={result.busy} />;
  const generated = result;
  const reportId = keepReport(actor, generated);
  const base = `/api/v1/tasks/${generated.report.task.id}/report?report=${reportId}`;
  return (
    <>
      <PageHeader title="Signed task report" description={`Generated ${generated.report.generatedAt.toISOString()}; ${generated.pdf.length} bytes, SHA-256 ${generated.signature.sha256}.`} />
      <ul className="space-y-2 text-sm">
        <li>
          <a className="text-brand-700 hover:underline" href={`${base}&format=pdf`} data-testid="report-download-pdf">Download the PDF</a>
        </li>
        <li>
          <a className="text-brand-700 hover:underline" href={`${base}&format=sig`} data-testid="report-download-sig">Download its detached signature</a> (key {generated.signature.keyId})
        </li>
      </ul>
      <p className="mt-4 max-w-2xl text-sm text-slate-600">
        Check them anywhere with <code>bulkhead audit verify-report FILE.pdf --signature FILE.pdf.sig --keys bulkhead-audit-keys.json</code>, using the public keys at{" "}
        <a className="text-brand-700 underline" href="/.well-known/bulkhead-audit-keys.json">/.well-known/bulkhead-audit-keys.json</a>.
      </p>
      <p className="mt-4 text-sm">
        <Link className="text-brand-700 hover:underline" href={`/tasks/${generated.report.task.id}/report`}>Back to the report</Link>
      </p>
    </>
  );
}
