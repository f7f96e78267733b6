/**
 * Exports of the audit log (CSV, JSON Lines, OCSF JSON Lines) for the page, the API and the CLI.
 * An export covers the events that match the filter up to the newest one when it starts
 * (`throughSeq`), in chain order, read through a cursor as fast as the receiver takes them.
 * It is audited twice: `audit.export_started` (who, filter, format, range) is written before
 * the first byte, so an export that cannot be recorded does not happen; `audit.exported` is
 * written when it ends, with the number of rows sent and whether it completed, was cancelled
 * (the receiver went away) or failed.
 */
import { z } from "zod";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { actorStillValid } from "@/lib/auth/actor-still-valid";
import type { Db } from "@/lib/db/client";
import { AppError, isAppError } from "@/lib/errors/app-error";
import { isDatabaseUnavailable } from "@/lib/db/errors";
import type { Prisma } from "@/lib/generated/prisma/client";
import { auditFilterInput, describeFilter, type AuditFilterInput } from "../filter";
import type { AuditReadVia } from "../query";
import { recordAuditEvent } from "../record";
import { resolveFilter, whereClause, type AuditRow } from "../search";
import { auditSql } from "../sql";
import { streamAuditRows } from "../stream";
import { csvHeader, csvRow } from "./csv";
import { jsonlRow } from "./jsonl";
import { ocsfRow } from "./ocsf";

export const EXPORT_FORMATS = ["csv", "jsonl", "ocsf"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const exportFormat = z.enum(EXPORT_FORMATS, { error: "format must be csv, jsonl or ocsf" }).default("csv");

const FORMATS: Record<ExportFormat, { contentType: string; extension: string; header: () => string; row: (r: AuditRow) => string }> = {
  csv: { contentType: "text/csv; charset=utf-8; header=present", extension: "csv", header: csvHeader, row: csvRow },
  jsonl: { contentType: "application/x-ndjson; charset=utf-8", extension: "jsonl", header: () => "", row: jsonlRow },
  ocsf: { contentType: "application/x-ndjson; charset=utf-8", extension: "ocsf.jsonl", header: () => "", row: ocsfRow },
};

export interface AuditExport {
  format: ExportFormat;
  contentType: string;
  filename: string;
  /** The newest event the export can contain. */
  throughSeq: string;
  /** The file, in pieces; stop early with `return()` (the finishing event says "cancelled"). */
  chunks: AsyncGenerator<string, void, undefined>;
  /** Events written so far (all of them once `chunks` has ended). */
  rows: () => number;
  /** Why the filter matches nothing whatever the log holds ("no agent has that name"), else null. */
  nothing: string | null;
  /** A sentence for each requested `type` the log has no event of (lib/audit/search.ts). */
  unmatchedTypes: string[];
  /** A sentence for each requested `outcome` no event in the log has. */
  unmatchedOutcomes: string[];
}

export interface ExportOptions {
  via: AuditReadVia;
  /** Rows per database fetch (default 1000). */
  batchSize?: number;
  /** A receiver that takes nothing for this long is dropped (default 5 minutes). */
  idleMs?: number;
}

/**
 * Each running export holds a database connection for as long as its receiver reads, so a
 * process runs at most this many at once (the rest get 429), and an export whose receiver stops
 * reading is cancelled after `idleMs`: a slow or stalled client cannot take the dashboard's
 * connection pool.
 */
export const MAX_CONCURRENT_EXPORTS = 3; // the dashboard's pool has 10 connections
const DEFAULT_IDLE_MS = 5 * 60_000;
let running = 0;

/** Exports running in this process (for tests and metrics). */
export function runningExports(): number {
  return running;
}

export async function startAuditExport(db: Db, actor: Actor, input: AuditFilterInput & { format?: string }, options: ExportOptions): Promise<AuditExport> {
  assertCan(actor, "read");
  // As a field, so that a refusal names it (issues path "format", the CLI's --format), not the whole input.
  const format = z.object({ format: exportFormat }).parse({ format: input.format }).format;
  const filter = auditFilterInput.parse(input);
  if (running >= MAX_CONCURRENT_EXPORTS) {
    throw new AppError("CONFLICT", `${running} audit exports are already running`, {
      statusCode: 429,
      userMessage: `${MAX_CONCURRENT_EXPORTS} audit exports are already running; try again when one has finished.`,
    });
  }
  // The slot is taken now, in the same turn as the check: taken only once the export was set up
  // (after the queries and the audit event below), any number of requests sent at once all passed
  // the check while none had taken one yet, each then holding a connection for as long as its
  // receiver read. Given back here if setting up fails; the export's own guard releases it after.
  running++;
  let handedOver = false;
  try {
    const exp = await setUpExport(db, actor, filter, format, options);
    handedOver = true;
    return exp;
  } finally {
    if (!handedOver) running--;
  }
}

async function setUpExport(db: Db, actor: Actor, filter: z.output<typeof auditFilterInput>, format: z.output<typeof exportFormat>, options: ExportOptions): Promise<AuditExport> {
  const sql = auditSql(db);
  const resolved = await resolveFilter(sql, filter);
  const [head] = await sql.query<{ seq: string }>("SELECT coalesce(max(seq), 0)::text AS seq FROM audit_events");
  const throughSeq = head?.seq ?? "0";
  const about = { via: options.via, format, filter: describeFilter(filter), throughSeq };
  await recordAuditEvent(db, { type: "audit.export_started", actor, outcome: "allow", data: about as Prisma.InputJsonValue });

  const spec = FORMATS[format];
  let rows = 0;
  async function* chunks(): AsyncGenerator<string, void, undefined> {
    let firstSeq: string | null = null;
    let lastSeq: string | null = null;
    let status: "completed" | "cancelled" | "failed" = "cancelled";
    let error: string | null = null;
    try {
      const header = spec.header();
      if (header) yield header;
      for await (const batch of streamAuditRows(db, whereClause(resolved, { throughSeq: BigInt(throughSeq) }), { batchSize: options.batchSize })) {
        // A download can run for a long time (as slowly as its receiver reads): signing out,
        // revoking the API key, disabling or demoting its user ends it between two batches, as it
        // ends the live approval stream, instead of letting it run to the end of the log.
        if (!(await actorStillValid(db, actor, "read"))) throw credentialsEnded();
        let out = "";
        for (const row of batch) out += spec.row(row);
        firstSeq ??= batch[0]!.seq;
        lastSeq = batch[batch.length - 1]!.seq;
        rows += batch.length;
        yield out;
      }
      status = "completed";
    } catch (e) {
      status = "failed";
      // The audit keeps a short reason, never the driver's message (it can quote values and SQL).
      error = exportFailureReason(e);
      // A refusal (credentials that ended) is expected and said in the audit; anything else is logged whole.
      if (isAppError(e)) console.error(`audit: an export stopped: ${e.message}`);
      else console.error("audit: an export failed", e);
      throw e;
    } finally {
      const data = { ...about, status, rows, firstSeq, lastSeq, ...(error ? { error } : {}) };
      await recordAuditEvent(db, { type: "audit.exported", actor, outcome: status === "completed" ? "allow" : status === "cancelled" ? "cancel" : "deny", data: data as Prisma.InputJsonValue }).catch(
        (e: unknown) => console.error("audit: the end of an export could not be recorded", e),
      );
    }
  }

  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return { format, contentType: spec.contentType, filename: `bulkhead-audit-${stamp}.${spec.extension}`, throughSeq, chunks: guarded(chunks(), options.idleMs ?? DEFAULT_IDLE_MS), rows: () => rows, nothing: resolved.nothing, unmatchedTypes: resolved.unmatchedTypes, unmatchedOutcomes: resolved.unmatchedOutcomes };
}

function credentialsEnded(): AppError {
  return new AppError("UNAUTHENTICATED", "The export's sign-in, role or API key is no longer valid.", {
    userMessage: "The export stopped: the sign-in, role or API key it ran with is no longer valid.",
  });
}

/** What the audit says about a failed export: a fixed sentence and, for a database error, its SQLSTATE. */
export function exportFailureReason(error: unknown): string {
  if (isAppError(error)) return `refused: ${error.code.toLowerCase()}`;
  if (isDatabaseUnavailable(error)) return "the database became unavailable";
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return `the database refused the query (SQLSTATE ${code})`;
  return "the export stopped on an unexpected error";
}

/**
 * Holds the export slot startAuditExport took until the export ends however it ends: read to the
 * end, failed, stopped by the receiver (`return()`, even before the first chunk), or abandoned
 * (no `next()` for `idleMs`, then it is stopped as if the receiver had gone).
 */
function guarded(inner: AsyncGenerator<string, void, undefined>, idleMs: number): AsyncGenerator<string, void, undefined> {
  // The slot was taken by startAuditExport; this guard gives it back.
  let released = false;
  let timer: NodeJS.Timeout | null = null;
  const release = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (!released) {
      released = true;
      running--;
    }
  };
  const stop = async () => {
    try {
      await inner.return(undefined);
    } finally {
      release();
    }
  };
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void stop(), idleMs);
    timer.unref?.();
  };
  arm();
  const outer: AsyncGenerator<string, void, undefined> = {
    async next() {
      if (timer) clearTimeout(timer);
      try {
        const r = await inner.next();
        if (r.done) release();
        else arm();
        return r;
      } catch (error) {
        release();
        throw error;
      }
    },
    async return() {
      await stop();
      return { value: undefined, done: true };
    },
    async throw(error: unknown) {
      try {
        return await inner.throw(error);
      } finally {
        release();
      }
    },
    [Symbol.asyncIterator]() {
      return outer;
    },
  };
  return outer;
}

/** A pull-based byte stream of an export for a Response: pulls only what the receiver reads, and a
 * receiver that goes away cancels the export (its cursor is closed, its end recorded). */
export function exportByteStream(exp: AuditExport): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { value, done } = await exp.chunks.next();
          if (done) controller.close();
          else controller.enqueue(encoder.encode(value));
        } catch (error) {
          controller.error(error);
        }
      },
      async cancel() {
        await exp.chunks.return(undefined);
      },
    },
    { highWaterMark: 0 },
  );
}
