/**
 * Generates a task's report as a signed PDF, and records that it was generated (who, which task,
 * the PDF's hash and the chain range it covers) before handing it out: a report that cannot be
 * recorded is not given.
 */
import { randomUUID } from "node:crypto";
import type { Actor } from "@/lib/auth/actor";
import type { CheckpointKey } from "@/lib/audit/checkpoints";
import { recordAuditEvent } from "@/lib/audit/record";
import type { Db } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { PDF_DECISION_ROWS } from "./limits";
import { renderTaskReportPdf } from "./pdf";
import { signReport, type ReportSignature } from "./signature";
import { withReportSlot } from "./slots";
import { buildTaskReport, type TaskReport } from "./task-report";

export type ReportVia = "dashboard" | "api" | "cli";

export interface GeneratedReport {
  pdf: Buffer;
  signature: ReportSignature;
  report: TaskReport;
  filename: string;
}

export async function generateTaskReport(db: Db, actor: Actor, taskId: string, o: { checkpointKeys: readonly CheckpointKey[] | null; reportKey: Buffer | null; via: ReportVia; now?: Date }): Promise<GeneratedReport> {
  if (!o.reportKey) {
    throw new AppError("CONFIG", "This dashboard has no report key.", { statusCode: 503, userMessage: "Reports cannot be signed: start Bulkhead with `bulkhead start` (which gives the dashboard its report key), or set BULKHEAD_REPORT_SIGNING_KEY." });
  }
  const reportKey = o.reportKey;
  // One slot for the data and the PDF together (lib/reports/slots.ts).
  return withReportSlot(async () => {
    const started = Date.now();
    const report = await buildTaskReport(db, actor, taskId, { checkpointKeys: o.checkpointKeys, perPage: PDF_DECISION_ROWS, now: o.now });
    const pdf = await renderTaskReportPdf(report);
    const signature = signReport(reportKey, pdf, report.task.id, report.generatedAt);
    await recordReportEvent(db, actor, report, { via: o.via, format: "pdf", sha256: signature.sha256, size: pdf.length, keyId: signature.keyId, ms: Date.now() - started });
    return { pdf, signature, report, filename: `bulkhead-task-${report.task.id}-${report.generatedAt.toISOString().replace(/[:.]/g, "-")}.pdf` };
  });
}

/** `audit.report_generated`: the HTML page records it too (format html). */
export async function recordReportEvent(db: Db, actor: Actor, report: TaskReport, data: Record<string, string | number | null>): Promise<void> {
  await recordAuditEvent(db, {
    type: "audit.report_generated",
    actor,
    agentId: report.agent.id,
    taskId: report.task.id,
    data: { ...data, reportId: randomUUID(), decisions: report.totalDecisions, firstSeq: report.verification.firstSeq, lastSeq: report.verification.lastSeq, verified: report.verification.result.ok },
  });
}
