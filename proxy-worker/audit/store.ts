/**
 * The shipper's SQL. A batch and the log's cursor move in ONE statement (so in one transaction):
 * the cursor is compared and set (`lsn = expected` -> `lsn = last`) in a data-modifying CTE, and
 * the rows are inserted only if that update happened. So the database holds a batch exactly when
 * its cursor says so: a shipper that restarts, or retries after a timeout that in fact committed,
 * reads the cursor and goes on from there, with no duplicate and no gap. Rows go in in array
 * order (WITH ORDINALITY ... ORDER BY), so the chain trigger sees them in log order; seq,
 * prev_hash and hash are the trigger's business. Eleven array parameters whatever the batch size,
 * each a text[] in PostgreSQL's binary format (textArrayBinary): no element is quoted or escaped
 * on the way, and the server copies each one instead of parsing a literal; the columns that are
 * not text are cast in the statement, as the server cast the literals before.
 */
import type pg from "pg";
import type { AuditRow } from "./event";

const SHIP = `WITH moved AS (
  UPDATE audit_wal_cursors SET lsn = $13::bigint, updated_at = now()
   WHERE wal_id = $12::uuid AND lsn = $14::bigint
  RETURNING 1
), inserted AS (
  INSERT INTO audit_events (at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data)
  SELECT v.at, v.type, v.actor_type, v.actor_id, v.agent_id, v.task_id, v.outcome, v.effect, v.reason, v.rule_id, v.data::jsonb
    FROM unnest($1::text[]::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[]::uuid[], $6::text[]::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
         WITH ORDINALITY AS v(at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data, ord)
   WHERE EXISTS (SELECT 1 FROM moved)
   ORDER BY v.ord
  RETURNING 1
)
SELECT (SELECT count(*) FROM moved)::int AS moved, (SELECT count(*) FROM inserted)::int AS inserted`;

// For events moved in from an earlier version's spool, which may be in the table already.
const SHIP_ONCE = SHIP.replace(
  "WHERE EXISTS (SELECT 1 FROM moved)",
  "WHERE EXISTS (SELECT 1 FROM moved) AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.at = v.at AND e.data->>'eventId' = v.data::jsonb->>'eventId')",
);

// The cursor of a log seen for the first time starts at 0 (nothing shipped).
const CURSOR = `WITH created AS (
  INSERT INTO audit_wal_cursors (wal_id, worker_id) VALUES ($1::uuid, $2) ON CONFLICT (wal_id) DO NOTHING RETURNING lsn
)
SELECT lsn::text AS lsn FROM created UNION ALL SELECT lsn::text FROM audit_wal_cursors WHERE wal_id = $1::uuid`;

// Which of these events (id and time, as the log holds them) are stored, by the index on `at`.
// One older than the newest retention run may have been archived and removed: counted as stored.
const STORED = `SELECT v.ord::int AS ord FROM unnest($1::text[], $2::text[]::timestamptz[]) WITH ORDINALITY AS v(id, at, ord)
 WHERE EXISTS (SELECT 1 FROM audit_events e WHERE e.at = v.at AND e.data->>'eventId' = v.id)
    OR v.at < (SELECT max(created_at) FROM audit_retention)`;

/** The indexes (into `rows`) of the events that are in audit_events. */
export async function storedEvents(client: pg.ClientBase, rows: readonly AuditRow[]): Promise<Set<number>> {
  if (rows.length === 0) return new Set();
  const { rows: found } = await client.query<{ ord: number }>({
    text: STORED,
    values: [textArrayBinary(rows.map((r) => r.eventId)), textArrayBinary(rows.map((r) => r.at))],
  });
  return new Set(found.map((r) => r.ord - 1));
}

const TEXT_OID = 25;

/**
 * A one-dimensional text[] in PostgreSQL's binary wire format (what array_send writes, and
 * array_recv reads for a parameter sent in binary): dimensions, null flag, element type, then
 * each element as its length (-1 for NULL) and its UTF-8 bytes. The driver sends a Buffer
 * parameter in binary. Made by the shipper, not by the driver, so that a batch's parameters can
 * be made while the database is still storing the batch before it.
 */
export function textArrayBinary(values: ReadonlyArray<string | null>): Buffer {
  const n = values.length;
  const lengths = new Int32Array(n);
  let size = n === 0 ? 12 : 20 + 4 * n;
  let hasNull = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) {
      lengths[i] = -1;
      hasNull = 1;
    } else {
      const bytes = Buffer.byteLength(v, "utf8");
      lengths[i] = bytes;
      size += bytes;
    }
  }
  const out = Buffer.allocUnsafe(size);
  out.writeInt32BE(n === 0 ? 0 : 1, 0);
  out.writeInt32BE(hasNull, 4);
  out.writeInt32BE(TEXT_OID, 8);
  if (n === 0) return out;
  out.writeInt32BE(n, 12);
  out.writeInt32BE(1, 16); // lower bound
  let at = 20;
  for (let i = 0; i < n; i++) {
    const length = lengths[i]!;
    out.writeInt32BE(length, at);
    at += 4;
    if (length > 0) at += out.write(values[i]!, at, length, "utf8");
  }
  return out;
}

/** A batch's eleven columns as binary text arrays, ready to send; `rows` is how many rows they hold. */
export interface PreparedRows {
  rows: number;
  values: Buffer[];
}

function isPrepared(rows: readonly AuditRow[] | PreparedRows): rows is PreparedRows {
  return !Array.isArray(rows);
}

export function prepareRows(rows: readonly AuditRow[]): PreparedRows {
  const cols: Array<Array<string | null>> = Array.from({ length: 11 }, () => new Array<string | null>(rows.length));
  rows.forEach((r, i) => {
    cols[0]![i] = r.at;
    cols[1]![i] = r.type;
    cols[2]![i] = r.actorType;
    cols[3]![i] = r.actorId;
    cols[4]![i] = r.agentId;
    cols[5]![i] = r.taskId;
    cols[6]![i] = r.outcome;
    cols[7]![i] = r.effect;
    cols[8]![i] = r.reason;
    cols[9]![i] = r.ruleId;
    cols[10]![i] = r.data;
  });
  return { rows: rows.length, values: cols.map(textArrayBinary) };
}

/** The log's cursor: every event with an LSN up to it is in audit_events. */
export async function readCursor(client: pg.ClientBase, walId: string, workerId: string): Promise<number> {
  const { rows } = await client.query<{ lsn: string }>({ text: CURSOR, values: [walId, workerId] });
  return Number(rows[0]!.lsn);
}

/**
 * Inserts `rows` (or rows already made into parameters by prepareRows) and moves the cursor from
 * `expected` to `last`, atomically. Returns false (and changes nothing) when the cursor was not at
 * `expected`: the caller reads it again. With `skipStored`, rows whose event id is already stored
 * at the same time are left out.
 */
export async function shipRows(client: pg.ClientBase, walId: string, expected: number, last: number, rows: readonly AuditRow[] | PreparedRows, skipStored = false): Promise<boolean> {
  const prepared = isPrepared(rows) ? rows : prepareRows(rows);
  const { rows: result } = await client.query<{ moved: number; inserted: number }>({
    name: skipStored ? "bulkhead_audit_ship_once" : "bulkhead_audit_ship",
    text: skipStored ? SHIP_ONCE : SHIP,
    values: [...prepared.values, walId, String(last), String(expected)],
  });
  return result[0]!.moved === 1;
}

/**
 * The database refused the rows themselves (SQLSTATE classes 22 data exception, 23 integrity
 * violation): retrying cannot help, sanitising or a minimal event may. Anything else (connection
 * refused or lost, timeouts, shutdown, missing tables) means the database is unavailable.
 */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^2[23]/.test(code);
}
