/**
 * Everything a per-task report shows (docs/audit.md, "Per-task reports"), read in one place for
 * the HTML page and the PDF alike. Decisions are aggregated in SQL (counts per outcome, a
 * timeline in 48 buckets) and listed page by page, so a task with 100,000 events costs a few
 * index scans, not 100,000 rows in memory.
 */
import { assertCan, type Actor } from "@/lib/auth/actor";
import { checkpointFromRow, checkpointRowColumns, checkpointSignatureValid, type CheckpointKey, type CheckpointRow } from "@/lib/audit/checkpoints";
import { auditSql } from "@/lib/audit/sql";
import { verifyAuditChain } from "@/lib/audit/verify";
import type { Db } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { uuidSchema } from "@/lib/agents/agents";
import { blastRadius, type BlastRadius } from "@/lib/policy/blast-radius";
import { parsePolicy } from "@/lib/policy/parse";
import { normalizeLineEndings } from "@/lib/validation/line-endings";
import { lineDiff, type DiffLine } from "./line-diff";
import { withReportSlot } from "./slots";
import { REPORT_LIST_ROWS } from "./limits";
import { actorLabel, taskCreatorLabel } from "@/lib/audit/actor-label";

export const TIMELINE_BUCKETS = 48;
export const DECISIONS_PER_PAGE = 200;

export interface PolicyVersionView {
  version: number;
  at: Date | null;
  by: string | null;
  yaml: string;
  /** Against the version before; null for the first. */
  diff: DiffLine[] | null;
}

export interface DecisionRow {
  seq: string;
  at: Date;
  type: string;
  outcome: string | null;
  effect: string | null;
  method: string | null;
  url: string | null;
  reason: string | null;
  ruleId: string | null;
}

export interface TaskReport {
  generatedAt: Date;
  generatedBy: string;
  task: { id: string; purpose: string; status: string; scope: string; createdAt: Date; createdBy: string | null; expiresAt: Date; endedAt: Date | null; endedReason: string | null };
  agent: { id: string; name: string; status: string; owner: string };
  policyVersions: PolicyVersionView[];
  blastRadius: BlastRadius | null;
  /** The first REPORT_LIST_ROWS tokens minted for the task, oldest first. */
  tokens: Array<{ jti: string; issuedAt: Date; expiresAt: Date; revokedAt: Date | null; issuedBy: string | null }>;
  sandboxes: Array<{ name: string; sourceAddress: string | null; createdAt: Date; removedAt: Date | null }>;
  outcomes: Array<{ outcome: string; count: number }>;
  totalDecisions: number;
  timeline: { from: Date; to: Date; buckets: Array<Record<string, number>> } | null;
  decisions: { outcome: string | null; page: number; pages: number; rows: DecisionRow[] };
  /** The first REPORT_LIST_ROWS held requests, oldest first. */
  approvals: Array<{ id: string; method: string; url: string; status: string; reason: string; createdAt: Date; decidedAt: Date | null; decidedBy: string | null; note: string | null; waitedMs: number | null; cancelReason: string | null }>;
  /** Every held request of the task, and how many ended in each status. */
  approvalCounts: { total: number; byStatus: Array<{ status: string; count: number }> };
  /** Every token minted for the task (`tokens` lists the first REPORT_LIST_ROWS). */
  tokenCount: number;
  verification: {
    events: number;
    firstSeq: string | null;
    lastSeq: string | null;
    firstHash: string | null;
    lastHash: string | null;
    checkpoint: { number: string | null; seq: string; hash: string; keyId: string; signatureValid: boolean | null; matchesChain: boolean } | null;
    result: { ok: true; verifiedThroughSeq: string } | { ok: false; firstBadSeq: string; problem: string; detail: string };
  };
}

export interface TaskReportOptions {
  checkpointKeys: readonly CheckpointKey[] | null;
  /** Decision list: one outcome (or all) and a 1-based page. */
  outcome?: string | null;
  page?: number;
  /** The PDF lists every page of decisions up to this many rows; the HTML one page. */
  perPage?: number;
  now?: Date;
}

export function loadTaskReport(db: Db, actor: Actor, taskId: string, options: TaskReportOptions): Promise<TaskReport> {
  assertCan(actor, "read");
  return withReportSlot(() => buildTaskReport(db, actor, taskId, options));
}

/** loadTaskReport without taking a slot: for a caller that already holds one (generate.ts). */
export async function buildTaskReport(db: Db, actor: Actor, taskId: string, options: TaskReportOptions): Promise<TaskReport> {
  assertCan(actor, "read");
  const id = uuidSchema.safeParse(taskId);
  const task = id.success
    ? await db.task.findUnique({
        where: { id: id.data },
        include: { agent: { include: { owner: { select: { email: true } } } }, createdBy: { select: { email: true } } },
      })
    : null;
  if (!task) throw new AppError("NOT_FOUND", "No such task.");
  const sql = auditSql(db);
  const now = options.now ?? new Date();

  const [policyEvents, tokens, sandboxes, approvals] = await Promise.all([
    sql.query<{ at: Date; data: { fromVersion?: number; toVersion?: number; before?: string; after?: string }; email: string | null; actor_type: string; actor_id: string | null }>(
      `SELECT e.at, e.data, u.email, e.actor_type, e.actor_id FROM audit_events e LEFT JOIN users u ON e.actor_type = 'user' AND u.id::text = e.actor_id
        WHERE e.task_id = $1::uuid AND e.type = 'task.policy_changed' ORDER BY e.seq`,
      [task.id],
    ),
    db.issuedToken.findMany({ where: { taskId: task.id }, orderBy: [{ issuedAt: "asc" }, { jti: "asc" }], take: REPORT_LIST_ROWS, include: { issuedBy: { select: { email: true } } } }),
    db.sandbox.findMany({ where: { taskId: task.id }, orderBy: { createdAt: "asc" } }),
    // The columns the report shows, never the held request's body: `include` read every column,
    // so each approval's whole body (up to BULKHEAD_MAX_BODY_BYTES, 64 MiB at most), for every
    // request the task ever had held, was loaded into the dashboard's memory to list a method and
    // a URL; an agent that had many large requests held could take the dashboard down this way
    // whenever anyone opened its task's report.
    // The first REPORT_LIST_ROWS of them: the agent decides how many of its requests are held.
    db.approval.findMany({
      where: { taskId: task.id },
      orderBy: [{ createdAt: "asc" }, { id: "asc" }],
      take: REPORT_LIST_ROWS,
      select: { id: true, method: true, url: true, status: true, reason: true, createdAt: true, decidedAt: true, decisionNote: true, cancelReason: true, decidedBy: { select: { email: true } } },
    }),
  ]);

  const [approvalStatuses, tokenCount] = await Promise.all([
    db.approval.groupBy({ by: ["status"], where: { taskId: task.id }, _count: { _all: true } }),
    db.issuedToken.count({ where: { taskId: task.id } }),
  ]);
  const byStatus = approvalStatuses
    .map((g) => ({ status: g.status as string, count: g._count._all }))
    .sort((a, b) => b.count - a.count || a.status.localeCompare(b.status));

  const createdBy = await taskCreatorLabel(db, task.id, task.createdBy?.email ?? null);
  const policyVersions = versions(
    task.policyYaml,
    task.createdAt,
    createdBy,
    policyEvents.map((e) => ({ ...e, email: actorLabel(e.actor_type, e.actor_id, e.email) })),
  );
  const parsed = parsePolicy(task.policyYaml);

  const outcomes = (
    await sql.query<{ outcome: string | null; n: string }>(
      `SELECT outcome, count(*)::text AS n FROM audit_events WHERE task_id = $1::uuid AND type LIKE 'proxy.%' GROUP BY outcome ORDER BY count(*) DESC`,
      [task.id],
    )
  ).map((r) => ({ outcome: r.outcome ?? "none", count: Number(r.n) }));
  const totalDecisions = outcomes.reduce((s, o) => s + o.count, 0);

  return {
    generatedAt: now,
    generatedBy: actor.kind === "user" ? actor.email : actor.kind === "api_key" ? `API key ${actor.apiKeyId}` : `system:${actor.label}`,
    task: { id: task.id, purpose: task.purpose, status: task.status, scope: task.scope, createdAt: task.createdAt, createdBy, expiresAt: task.expiresAt, endedAt: task.endedAt, endedReason: task.endedReason },
    agent: { id: task.agent.id, name: task.agent.name, status: task.agent.status, owner: task.agent.owner.email },
    policyVersions,
    blastRadius: parsed.ok ? blastRadius(parsed.policy, now) : null,
    tokens: tokens.map((t) => ({ jti: t.jti, issuedAt: t.issuedAt, expiresAt: t.expiresAt, revokedAt: t.revokedAt, issuedBy: t.issuedBy?.email ?? null })),
    sandboxes: sandboxes.map((s) => ({ name: s.name, sourceAddress: s.sourceAddress ?? (s.addresses || null), createdAt: s.createdAt, removedAt: s.removedAt })),
    outcomes,
    totalDecisions,
    timeline: await timeline(sql, task.id),
    decisions: await decisionPage(sql, task.id, options),
    approvals: approvals.map((a) => ({
      id: a.id,
      method: a.method,
      url: a.url,
      status: a.status,
      reason: a.reason,
      createdAt: a.createdAt,
      decidedAt: a.decidedAt,
      decidedBy: a.decidedBy?.email ?? null,
      note: a.decisionNote,
      waitedMs: a.decidedAt ? a.decidedAt.getTime() - a.createdAt.getTime() : null,
      cancelReason: a.cancelReason,
    })),
    approvalCounts: { total: byStatus.reduce((n, s) => n + s.count, 0), byStatus },
    tokenCount,
    verification: await verification(db, sql, task.id, options.checkpointKeys),
  };
}

function versions(current: string, createdAt: Date, creator: string | null, events: Array<{ at: Date; data: { toVersion?: number; before?: string; after?: string }; email: string | null }>): PolicyVersionView[] {
  const out: PolicyVersionView[] = [];
  // Policies stored before line ends were normalised on saving may hold the \r\n a browser sends.
  const first = normalizeLineEndings(events[0]?.data.before ?? current);
  out.push({ version: 1, at: createdAt, by: creator, yaml: first, diff: null });
  for (const e of events) {
    const prev = out[out.length - 1]!;
    const yaml = normalizeLineEndings(e.data.after ?? "");
    out.push({ version: e.data.toVersion ?? prev.version + 1, at: new Date(e.at), by: e.email, yaml, diff: lineDiff(prev.yaml, yaml) });
  }
  return out;
}

async function timeline(sql: ReturnType<typeof auditSql>, taskId: string): Promise<TaskReport["timeline"]> {
  const [range] = await sql.query<{ from: Date | null; to: Date | null }>(
    `SELECT min(at) AS "from", max(at) AS "to" FROM audit_events WHERE task_id = $1::uuid AND type LIKE 'proxy.%'`,
    [taskId],
  );
  if (!range?.from || !range.to) return null;
  const from = new Date(range.from);
  const to = new Date(Math.max(new Date(range.to).getTime(), from.getTime() + 1000));
  const rows = await sql.query<{ bucket: number; outcome: string | null; n: string }>(
    `SELECT least(width_bucket(extract(epoch FROM at), $2::float8, $3::float8, ${TIMELINE_BUCKETS}), ${TIMELINE_BUCKETS}) - 1 AS bucket, outcome, count(*)::text AS n
       FROM audit_events WHERE task_id = $1::uuid AND type LIKE 'proxy.%' GROUP BY 1, 2`,
    [taskId, from.getTime() / 1000, to.getTime() / 1000],
  );
  const buckets = Array.from({ length: TIMELINE_BUCKETS }, () => ({}) as Record<string, number>);
  for (const r of rows) {
    const b = buckets[Math.max(0, Math.min(TIMELINE_BUCKETS - 1, Number(r.bucket)))]!;
    b[r.outcome ?? "none"] = (b[r.outcome ?? "none"] ?? 0) + Number(r.n);
  }
  return { from, to, buckets };
}

async function decisionPage(sql: ReturnType<typeof auditSql>, taskId: string, options: TaskReportOptions): Promise<TaskReport["decisions"]> {
  const perPage = options.perPage ?? DECISIONS_PER_PAGE;
  const outcome = options.outcome ?? null;
  const [count] = await sql.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM audit_events WHERE task_id = $1::uuid AND type LIKE 'proxy.%' AND ($2::text IS NULL OR outcome = $2)`,
    [taskId, outcome],
  );
  const pages = Math.max(1, Math.ceil(Number(count?.n ?? 0) / perPage));
  const page = Math.min(Math.max(1, Math.floor(options.page ?? 1)), pages);
  const rows = await sql.query<{ seq: string; at: Date; type: string; outcome: string | null; effect: string | null; method: string | null; url: string | null; reason: string | null; rule_id: string | null }>(
    `SELECT seq::text AS seq, at, type, outcome, effect, data->>'method' AS method, data->>'url' AS url, reason, rule_id
       FROM audit_events WHERE task_id = $1::uuid AND type LIKE 'proxy.%' AND ($2::text IS NULL OR outcome = $2)
      ORDER BY audit_events.seq LIMIT ${perPage} OFFSET ${(page - 1) * perPage}`,
    [taskId, outcome],
  );
  return { outcome, page, pages, rows: rows.map((r) => ({ seq: r.seq, at: new Date(r.at), type: r.type, outcome: r.outcome, effect: r.effect, method: r.method, url: r.url, reason: r.reason, ruleId: r.rule_id })) };
}

/** The task's events in the chain, the checkpoint covering the last of them, and a verification from the first to that checkpoint (to the head when none covers it yet). */
async function verification(db: Db, sql: ReturnType<typeof auditSql>, taskId: string, keys: readonly CheckpointKey[] | null): Promise<TaskReport["verification"]> {
  const [range] = await sql.query<{ n: string; first: string | null; last: string | null }>(
    "SELECT count(*)::text AS n, min(seq)::text AS first, max(seq)::text AS last FROM audit_events WHERE task_id = $1::uuid",
    [taskId],
  );
  const first = range?.first ?? null;
  const last = range?.last ?? null;
  const hashes = first && last ? await sql.query<{ seq: string; hash: string | null }>("SELECT seq::text AS seq, hash FROM audit_events WHERE seq IN ($1::bigint, $2::bigint)", [first, last]) : [];
  const hashOf = (s: string | null) => hashes.find((h) => h.seq === s)?.hash ?? null;
  const [cp] = last
    ? await sql.query<CheckpointRow & { chain_hash: string | null }>(
        `SELECT ${checkpointRowColumns("c")}, (SELECT a.hash FROM audit_events a WHERE a.seq = c.seq) AS chain_hash
           FROM audit_checkpoints c WHERE c.seq >= $1::bigint ORDER BY c.seq, c.number NULLS LAST, c.id LIMIT 1`,
        [last],
      )
    : [];
  // The task's events are proven by the chain from the first of them to the signed checkpoint
  // that covers the last: what follows that checkpoint says nothing more about them, and reading
  // it made an old task's report re-verify the whole log written since (seconds per report). With
  // no checkpoint past the last event yet, to the head.
  const result = await verifyAuditChain(db, { fromSeq: first ? BigInt(first) : undefined, throughSeq: first && cp ? BigInt(cp.seq) : undefined, checkpointKeys: keys });
  return {
    events: Number(range?.n ?? 0),
    firstSeq: first,
    lastSeq: last,
    firstHash: hashOf(first),
    lastHash: hashOf(last),
    checkpoint: cp
      ? {
          number: cp.number,
          seq: cp.seq,
          hash: cp.hash,
          keyId: cp.key_id,
          signatureValid: keys === null ? null : checkpointSignatureValid(checkpointFromRow(cp), keys),
          matchesChain: cp.chain_hash === cp.hash,
        }
      : null,
    result: result.ok ? { ok: true, verifiedThroughSeq: result.lastSeq.toString() } : { ok: false, firstBadSeq: result.firstBadSeq.toString(), problem: result.problem, detail: result.detail },
  };
}

