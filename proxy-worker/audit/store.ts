/**
 * The audit writer's SQL: one multi-row INSERT per batch (eleven array parameters, whatever the
 * batch size), and the de-duplicating insert that replays the spool.
 */
import pg from "pg";
import type { AuditRow } from "./event";

// Rows go in in array order (WITH ORDINALITY ... ORDER BY), so the chain trigger sees them in the
// order they were recorded. seq, prev_hash and hash are the trigger's business.
const INSERT = `INSERT INTO audit_events (at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data)
SELECT v.at, v.type, v.actor_type, v.actor_id, v.agent_id, v.task_id, v.outcome, v.effect, v.reason, v.rule_id, v.data::jsonb
  FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
       WITH ORDINALITY AS v(at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data, ord)
 ORDER BY v.ord`;

function columns(rows: AuditRow[]): unknown[] {
  const cols: unknown[][] = Array.from({ length: 11 }, () => new Array<unknown>(rows.length));
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
  return cols;
}

/** Inserts a batch in one statement (its own transaction). */
export async function insertRows(pool: pg.Pool, rows: AuditRow[]): Promise<void> {
  await pool.query({ name: "bulkhead_audit_insert", text: INSERT, values: columns(rows) });
}

/**
 * Inserts spooled rows unless they are already in the database, which happens when a process
 * died after the commit and before the spool segment was deleted, or when a timed-out insert had
 * in fact committed. The table has no unique event id (the schema is not ours to change), so the
 * lookup uses the existing index on `at`: a spooled event keeps its original `at`, which narrows
 * the candidates to the events of that millisecond, and data->>'eventId' picks it out. The chain
 * head is locked first, so any insert still in flight has committed (and is seen) or has not
 * started: the check and the insert cannot race another writer.
 */
export async function insertRowsOnce(pool: pg.Pool, rows: AuditRow[]): Promise<{ inserted: number; skipped: number }> {
  const client = await pool.connect();
  let broken: unknown = undefined;
  try {
    await client.query("BEGIN");
    try {
      // FOR UPDATE on the head would need UPDATE on it, which the worker's role does not hold.
      await client.query("SELECT audit_chain_lock_head()");
      const ats = [...new Set(rows.map((r) => r.at))];
      const { rows: found } = await client.query<{ id: string }>(
        `SELECT data->>'eventId' AS id FROM audit_events
          WHERE at = ANY($1::timestamptz[]) AND data ? 'eventId' AND data->>'eventId' = ANY($2::text[])`,
        [ats, rows.map((r) => r.eventId)],
      );
      const seen = new Set(found.map((f) => f.id));
      const fresh = rows.filter((r) => !seen.has(r.eventId) && (seen.add(r.eventId), true));
      if (fresh.length > 0) await client.query({ name: "bulkhead_audit_insert", text: INSERT, values: columns(fresh) });
      await client.query("COMMIT");
      return { inserted: fresh.length, skipped: rows.length - fresh.length };
    } catch (error) {
      await client.query("ROLLBACK").catch((e: unknown) => (broken = e));
      throw error;
    }
  } catch (error) {
    if (!isDataError(error)) broken ??= error;
    throw error;
  } finally {
    client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
  }
}

/**
 * The database refused the rows themselves (SQLSTATE classes 22 data exception, 23 integrity
 * violation): retrying or spooling cannot help. Anything else (connection refused or lost,
 * timeouts, shutdown, missing tables) counts as the database being unavailable.
 */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^2[23]/.test(code);
}
