/**
 * `npm run bench -- audit-report`: how long a per-task report takes for a task with
 * BENCH_REPORT_EVENTS (default 100,000) proxy decisions, among BENCH_REPORT_NOISE (default
 * 100,000) events of other tasks: a fresh embedded PostgreSQL, the events generated inside it,
 * then BENCH_REPORT_RUNS (default 5) reports, each timed as a whole and by stage (gathering the
 * data, drawing the PDF, signing); median and max. Writes bench/results/audit-report.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { Actor } from "@/lib/auth/actor";
import { createPrismaClient } from "@/lib/db/client";
import { startEmbeddedDatabase } from "@/lib/db/embedded";
import { migrate } from "@/lib/db/migrate";
import { PDF_DECISION_ROWS } from "@/lib/reports/limits";
import { renderTaskReportPdf } from "@/lib/reports/pdf";
import { signReport } from "@/lib/reports/signature";
import { loadTaskReport } from "@/lib/reports/task-report";
import { bulkProxyDecisions, type Fleet } from "../tests/support/audit-events";
import { describeMachine } from "./support/machine";
import { freePort } from "./support/ports";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const int = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const EVENTS = int("BENCH_REPORT_EVENTS", 100_000);
const NOISE = int("BENCH_REPORT_NOISE", 100_000);
const RUNS = int("BENCH_REPORT_RUNS", 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runAuditReportBench(): Promise<void> {
  const machine = await describeMachine();
  console.log(`audit-report bench: a task with ${EVENTS.toLocaleString("en")} decisions among ${NOISE.toLocaleString("en")} others, ${RUNS} runs; ${machine.nproc} × ${machine.cpuModel}`);
  const dir = mkdtempSync(path.join(tmpdir(), "bh-report-bench-"));
  const server = await startEmbeddedDatabase({ dataDir: dir, port: await freePort(), database: "bulkhead_report_bench" });
  try {
    await migrate(server.url);
    const db = createPrismaClient(server.url, 4);
    const pool = new pg.Pool({ connectionString: server.url, max: 2 });
    const user = await db.user.create({ data: { email: "bench@example.test", role: "auditor" } });
    const agent = await db.agent.create({ data: { name: "bench-agent", ownerId: user.id } });
    const task = await db.task.create({ data: { agentId: agent.id, purpose: "bench report task", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 86_400_000) } });
    const other = await db.task.create({ data: { agentId: agent.id, purpose: "other task", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 86_400_000) } });
    const fleetOf = (id: string): Fleet => ({ agents: [{ id: agent.id, name: agent.name }], tasks: [{ id, agentId: agent.id }] });
    await bulkProxyDecisions(pool, fleetOf(other.id), NOISE, { chunk: 50_000, stepMs: 1000 });
    await bulkProxyDecisions(pool, fleetOf(task.id), EVENTS, { chunk: 50_000, stepMs: 1000 });
    await pool.query("VACUUM ANALYZE audit_events");
    const actor: Actor = { kind: "user", userId: user.id, email: user.email, role: "auditor" };
    const key = randomBytes(32);
    const runs: Array<{ totalMs: number; loadMs: number; pdfMs: number; signMs: number; bytes: number }> = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const report = await loadTaskReport(db, actor, task.id, { checkpointKeys: null, perPage: PDF_DECISION_ROWS });
      const t1 = performance.now();
      const pdf = await renderTaskReportPdf(report);
      const t2 = performance.now();
      signReport(key, pdf, task.id, report.generatedAt);
      const t3 = performance.now();
      runs.push({ totalMs: t3 - t0, loadMs: t1 - t0, pdfMs: t2 - t1, signMs: t3 - t2, bytes: pdf.length });
      console.log(`  run ${i + 1}: ${Math.round(t3 - t0)} ms (data ${Math.round(t1 - t0)} ms, PDF ${Math.round(t2 - t1)} ms, sign ${(t3 - t2).toFixed(1)} ms), ${pdf.length} bytes`);
    }
    const summary = {
      name: "audit-report",
      at: new Date().toISOString(),
      machine,
      events: EVENTS,
      noise: NOISE,
      runs,
      medianMs: { total: median(runs.map((r) => r.totalMs)), data: median(runs.map((r) => r.loadMs)), pdf: median(runs.map((r) => r.pdfMs)), sign: median(runs.map((r) => r.signMs)) },
      maxMs: Math.max(...runs.map((r) => r.totalMs)),
    };
    console.log(`| task events | runs | median total | data | PDF | sign | max | PDF size |\n|---|---|---|---|---|---|---|---|\n| ${EVENTS} | ${RUNS} | ${Math.round(summary.medianMs.total)} ms | ${Math.round(summary.medianMs.data)} ms | ${Math.round(summary.medianMs.pdf)} ms | ${summary.medianMs.sign.toFixed(1)} ms | ${Math.round(summary.maxMs)} ms | ${runs[0]!.bytes} B |`);
    mkdirSync(path.join(root, "bench", "results"), { recursive: true });
    writeFileSync(path.join(root, "bench", "results", "audit-report.json"), `${JSON.stringify(summary, null, 2)}\n`);
    await pool.end();
    await db.$disconnect();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
