/**
 * Streams the audit log to a SIEM as OCSF events, in chain order, as they are written. The
 * position is a cursor file (the last seq the SIEM accepted), replaced atomically after every
 * accepted batch: after a restart shipping resumes after it, so nothing is skipped, and a batch
 * is sent again only if the process stopped between the SIEM's answer and the cursor's write
 * (its `idempotency-key` / seq numbers let the receiver drop that one repeat). While the SIEM is
 * away the events wait in the database (the audit log itself is the queue) and drain when it
 * comes back, with exponential backoff between attempts.
 */
import { writeFile, rename } from "node:fs/promises";
import path from "node:path";
import { ocsfEvent } from "../export/ocsf";
import { EVENT_COLUMNS, EVENT_JOINS, type AuditRow } from "../search";
import { auditSql, type AuditDb } from "../sql";
import { measureSiemLag, readSiemCursor } from "./lag";
import type { SiemTransport } from "./transport";

export interface SiemStatus {
  state: "idle" | "shipping" | "retrying" | "stopped";
  /** The last seq the SIEM accepted. */
  cursorSeq: string;
  headSeq: string;
  lagEvents: number;
  /** Age of the oldest event not yet accepted (0 when caught up). */
  lagSeconds: number;
  shipped: number;
  lastSuccessAt: string | null;
  lastError: string | null;
  target: string;
}

export interface SiemShipperOptions {
  db: AuditDb;
  transport: SiemTransport;
  cursorFile: string;
  batchSize?: number;
  intervalMs?: number;
  maxBackoffMs?: number;
  onError?: (error: Error) => void;
}

async function writeCursor(file: string, seq: bigint): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify({ seq: seq.toString(), at: new Date().toISOString() })}\n`, { mode: 0o600, flush: true });
  await rename(tmp, file);
}

export interface SiemShipper {
  /** Ships until caught up (or the first failure, which it throws). */
  drain(): Promise<number>;
  status(): Promise<SiemStatus>;
  stop(): Promise<void>;
}

export function startSiemShipper(o: SiemShipperOptions): SiemShipper {
  const sql = auditSql(o.db);
  const batchSize = o.batchSize ?? 500;
  let cursor = readSiemCursor(o.cursorFile).seq;
  let shipped = 0;
  let lastSuccessAt: string | null = null;
  let lastError: string | null = null;
  let failures = 0;
  let stopped = false;
  let running: Promise<number> | null = null;
  let timer: NodeJS.Timeout | null = null;

  const batch = async (): Promise<number> => {
    const rows = await sql.query<AuditRow>(
      `SELECT ${EVENT_COLUMNS} FROM (SELECT * FROM audit_events e WHERE e.seq > $1::bigint ORDER BY e.seq LIMIT ${batchSize}) e ${EVENT_JOINS} ORDER BY e.seq`,
      [cursor.toString()],
    );
    if (rows.length === 0) return 0;
    const last = BigInt(rows[rows.length - 1]!.seq);
    await o.transport.send(rows.map((r) => ocsfEvent(r)), `bulkhead-${rows[0]!.seq}-${last}`);
    await writeCursor(o.cursorFile, last);
    cursor = last;
    shipped += rows.length;
    lastSuccessAt = new Date().toISOString();
    lastError = null;
    return rows.length;
  };

  const drain = () => {
    running ??= (async () => {
      let n = 0;
      for (let k = await batch(); k > 0; k = await batch()) n += k;
      return n;
    })().finally(() => {
      running = null;
    });
    return running;
  };

  const tick = () => {
    if (stopped) return;
    drain()
      .then(() => {
        failures = 0;
        schedule(o.intervalMs ?? 1000);
      })
      .catch((error: unknown) => {
        failures++;
        lastError = error instanceof Error ? error.message : String(error);
        o.onError?.(error instanceof Error ? error : new Error(lastError));
        schedule(Math.min(o.maxBackoffMs ?? 30_000, (o.intervalMs ?? 1000) * 2 ** Math.min(failures, 10)));
      });
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(tick, ms);
    timer.unref();
  };
  schedule(0);

  return {
    drain,
    async status() {
      const lag = await measureSiemLag(o.db, cursor);
      return {
        state: stopped ? "stopped" : lastError ? "retrying" : running ? "shipping" : "idle",
        cursorSeq: cursor.toString(),
        headSeq: lag.headSeq.toString(),
        lagEvents: lag.lagEvents,
        lagSeconds: lag.lagSeconds,
        shipped,
        lastSuccessAt,
        lastError,
        target: o.transport.description,
      };
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => undefined);
      await o.transport.close();
    },
  };
}
