/**
 * The task report as a PDF, drawn by pdfkit (a library, not a browser: `npm start` on a machine
 * without Chromium still produces it, and a report costs no browser process). Same sections as
 * the HTML page (app/(dashboard)/tasks/[id]/report). Agent-controlled text is written as text
 * (a PDF has no markup to inject into); characters outside the standard fonts' Latin-1 range and
 * control characters are shown as \uXXXX escapes, so nothing renders as something else.
 */
import PDFDocument from "pdfkit";
import { PDF_DECISION_ROWS } from "./limits";
import type { TaskReport } from "./task-report";
import { tokenEnd } from "./token-end";

const OUTCOME_COLOURS: Record<string, string> = { allow: "#15803d", approved: "#0f766e", deny: "#b91c1c", hold: "#b45309", reject: "#7f1d1d", none: "#64748b" };
const colour = (outcome: string) => OUTCOME_COLOURS[outcome] ?? "#475569";

/**
 * Printable Latin-1 only; everything else escaped. The soft hyphen (U+00AD) is Latin-1 but shows
 * nothing in the middle of a line, so it is escaped too: "vol\u00adprod" must not read as "volprod".
 */
export function pdfText(value: unknown): string {
  const s = value === null || value === undefined ? "-" : String(value);
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += (c >= 0x20 && c < 0x7f) || (c >= 0xa0 && c <= 0xff && c !== 0xad) ? ch : `\\u${c.toString(16).padStart(4, "0")}`;
  }
  return out;
}

const iso = (d: Date | null) => (d ? d.toISOString() : "-");

/**
 * How much of one agent-controlled line (a decision's or approval's URL and reason) the PDF
 * draws. A URL may be 16 KiB, which pdfkit wraps into ~150 lines of Courier in 0.2 s of
 * synchronous work: 2,000 such rows froze the dashboard for minutes whenever someone opened the
 * report. The rest is named, not drawn; the export and the report page have every character.
 */
export const PDF_ROW_CHARS = 400;

/**
 * `value` as pdfText shows it, cut to about `max` characters of that (an escaped character counts
 * as its six), never inside an escape, saying how many characters were left out.
 */
export function pdfRow(value: string, max = PDF_ROW_CHARS): string {
  let out = "";
  let taken = 0;
  const points = [...value];
  for (const ch of points) {
    const shown = pdfText(ch);
    if (out.length + shown.length > max) return `${out}...[${points.length - taken} more characters]`;
    out += shown;
    taken++;
  }
  return out;
}

/** Rows drawn between two yields to the event loop, so that other requests are served meanwhile. */
const ROWS_PER_TURN = 100;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function renderTaskReportPdf(report: TaskReport): Promise<Buffer> {
  const doc = new PDFDocument({ size: "A4", margin: 48, info: { Title: pdfText(`Bulkhead task report: ${report.task.purpose}`), Author: "Bulkhead", CreationDate: report.generatedAt }, bufferPages: false });
  const chunks: Buffer[] = [];
  doc.on("data", (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
  });
  const h = (title: string) => doc.moveDown(0.8).font("Helvetica-Bold").fontSize(13).fillColor("#0f172a").text(title).moveDown(0.3).font("Helvetica").fontSize(9);
  const line = (label: string, value: unknown) => doc.font("Helvetica-Bold").text(`${label}: `, { continued: true }).font("Helvetica").text(pdfText(value));

  doc.font("Helvetica-Bold").fontSize(18).text("Bulkhead task report");
  doc.font("Helvetica").fontSize(9).fillColor("#475569").text(`Generated ${iso(report.generatedAt)} by ${pdfText(report.generatedBy)}`).fillColor("#0f172a");

  h("Task");
  line("Purpose", report.task.purpose);
  line("Task id", report.task.id);
  line("Agent", `${report.agent.name} (${report.agent.id}, ${report.agent.status})`);
  line("Owner", report.agent.owner);
  line("Created", `${iso(report.task.createdAt)} by ${report.task.createdBy ?? "unknown"}`);
  line("Status", report.task.status);
  line(report.task.endedAt ? "Ended" : "Expires", `${iso(report.task.endedAt ?? report.task.expiresAt)}${report.task.endedReason ? ` (${report.task.endedReason})` : ""}`);
  line("Scope", report.task.scope || "(nothing)");

  h(`Policy versions (${report.policyVersions.length})`);
  for (const v of report.policyVersions) {
    doc.font("Helvetica-Bold").text(`Version ${v.version}: ${iso(v.at)} by ${pdfText(v.by ?? "unknown")}`).font("Courier").fontSize(8);
    if (v.diff) for (const d of v.diff) doc.fillColor(d.op === "+" ? "#15803d" : d.op === "-" ? "#b91c1c" : "#334155").text(pdfText(`${d.op} ${d.text}`));
    else doc.fillColor("#334155").text(pdfText(v.yaml));
    doc.fillColor("#0f172a").font("Helvetica").fontSize(9).moveDown(0.3);
  }

  h("Blast radius (current policy)");
  if (!report.blastRadius) doc.text("The current policy does not parse.");
  else {
    line("Mode", `${report.blastRadius.mode}; unlisted actions: ${report.blastRadius.unlisted}`);
    for (const s of report.blastRadius.services) {
      const envs = s.environments === "any" ? "any environment" : s.environments.join(", ");
      doc.text(pdfText(`${s.service}: ${envs}; highest effect ${s.highestEffect ?? "none"}; without approval: ${s.allowedWithoutApproval.join(", ") || "nothing"}; needs approval: ${s.needsApproval.map((a) => `${a.ruleId} (${a.effects.join("/")})`).join(", ") || "nothing"}`));
    }
  }

  h(`Tokens (${report.tokenCount}) and sandboxes (${report.sandboxes.length})`);
  if (report.tokens.length < report.tokenCount) doc.text(`The first ${report.tokens.length} tokens are listed; every one is in \`bulkhead audit export --task ${report.task.id}\`.`);
  for (const t of report.tokens) {
    const end = tokenEnd(t, report.task, report.generatedAt);
    doc.text(pdfText(`token ${t.jti}: issued ${iso(t.issuedAt)} by ${t.issuedBy ?? "-"}, ${end.word} ${iso(end.at)}`));
  }
  for (const s of report.sandboxes) doc.text(pdfText(`sandbox ${s.name} (${s.sourceAddress ?? "address released"}): created ${iso(s.createdAt)}${s.removedAt ? `, removed ${iso(s.removedAt)}` : ""}`));

  h(`Decisions (${report.totalDecisions})`);
  for (const o of report.outcomes) doc.fillColor(colour(o.outcome)).text(`${pdfText(o.outcome)}: ${o.count}`);
  doc.fillColor("#0f172a");
  if (report.timeline) drawTimeline(doc, report.timeline);

  h(`Approvals (${report.approvalCounts.total})`);
  if (report.approvalCounts.total > 0) doc.text(pdfText(report.approvalCounts.byStatus.map((s) => `${s.status}: ${s.count}`).join(", ")));
  if (report.approvals.length < report.approvalCounts.total) doc.text(`The first ${report.approvals.length} held requests are listed, oldest first; every hold and decision is in \`bulkhead audit export --task ${report.task.id}\`.`);
  for (const [i, a] of report.approvals.entries()) {
    if (i > 0 && i % ROWS_PER_TURN === 0) await nextTurn();
    const waited = a.waitedMs === null ? "" : `, after ${(a.waitedMs / 1000).toFixed(1)} s`;
    doc.text(pdfText(`${a.status}: ${a.method} ${pdfRow(a.url)} - held ${iso(a.createdAt)}; decided ${iso(a.decidedAt)} by ${a.decidedBy ?? "-"}${waited}${a.note ? `; note: ${pdfRow(a.note)}` : ""}${a.cancelReason ? `; cancelled: ${a.cancelReason}` : ""}`));
  }

  verificationBlock(doc, report, h, line);

  const shown = report.decisions.rows.length;
  h(`Decision log (${shown} of ${report.totalDecisions}, oldest first)`);
  if (shown < report.totalDecisions) doc.text(`The first ${PDF_DECISION_ROWS} decisions are listed; every one is in \`bulkhead audit export --task ${report.task.id}\` and on the report page.`);
  doc.text(`A URL or reason longer than ${PDF_ROW_CHARS} characters is cut short here; the export and the report page have it whole.`);
  doc.font("Courier").fontSize(7);
  for (const [i, r] of report.decisions.rows.entries()) {
    if (i > 0 && i % ROWS_PER_TURN === 0) await nextTurn();
    doc.fillColor(colour(r.outcome ?? "none")).text(pdfText(`#${r.seq} ${r.at.toISOString()} ${r.outcome ?? "-"} ${r.effect ?? "-"} ${pdfRow(r.method ?? "", 40)} ${pdfRow(r.url ?? r.type)} ${r.reason ? `- ${pdfRow(r.reason, 200)}` : ""}`), { lineBreak: true });
  }
  doc.end();
  return done;
}

function verificationBlock(doc: PDFKit.PDFDocument, report: TaskReport, h: (t: string) => unknown, line: (l: string, v: unknown) => unknown): void {
  const v = report.verification;
  h("Verification");
  line("Chain events of this task", v.events);
  line("First", `seq ${v.firstSeq ?? "-"}, hash ${v.firstHash ?? "-"}`);
  line("Last", `seq ${v.lastSeq ?? "-"}, hash ${v.lastHash ?? "-"}`);
  line(
    "Covering checkpoint",
    v.checkpoint
      ? `${v.checkpoint.number ? `#${v.checkpoint.number} ` : ""}at seq ${v.checkpoint.seq}, hash ${v.checkpoint.hash}, key ${v.checkpoint.keyId}; signature ${v.checkpoint.signatureValid === null ? "not checked" : v.checkpoint.signatureValid ? "valid" : "INVALID"}; ${v.checkpoint.matchesChain ? "matches the chain" : "DOES NOT match the chain"}`
      : "none yet (the newest events are signed at the next checkpoint)",
  );
  doc.fillColor(v.result.ok ? "#15803d" : "#b91c1c");
  line("Result at generation", v.result.ok ? `verified from seq ${v.firstSeq ?? 1} through seq ${v.result.verifiedThroughSeq}` : `BROKEN at seq ${v.result.firstBadSeq}: ${v.result.problem}. ${v.result.detail}`);
  doc.fillColor("#0f172a");
}

function drawTimeline(doc: PDFKit.PDFDocument, timeline: NonNullable<TaskReport["timeline"]>): void {
  const width = 480;
  const height = 90;
  const x0 = doc.page.margins.left;
  if (doc.y + height + 30 > doc.page.height - doc.page.margins.bottom) doc.addPage();
  const y0 = doc.y + 6;
  const max = Math.max(1, ...timeline.buckets.map((b) => Object.values(b).reduce((s, n) => s + n, 0)));
  const bw = width / timeline.buckets.length;
  timeline.buckets.forEach((b, i) => {
    let top = y0 + height;
    for (const [outcome, n] of Object.entries(b).sort()) {
      const bh = (n / max) * height;
      top -= bh;
      doc.rect(x0 + i * bw, top, Math.max(1, bw - 1), bh).fill(colour(outcome));
    }
  });
  doc.fillColor("#475569").fontSize(7).text(`${timeline.from.toISOString()}  to  ${timeline.to.toISOString()}  (highest bar: ${max})`, x0, y0 + height + 4, { width });
  doc.fillColor("#0f172a").fontSize(9).text("", x0);
}
