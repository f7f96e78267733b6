/**
 * JSON Lines: one JSON object per event and line, in chain order. JSON escapes line breaks inside
 * strings, so an agent's text can never start a new line (a new "event"). `data` is the stored
 * jsonb value as it is; the hash fields let a reader check each event's links.
 */
import type { AuditRow } from "../search";

export function jsonlRow(row: AuditRow): string {
  const head = JSON.stringify({
    seq: row.seq,
    id: row.id,
    at: new Date(row.at).toISOString(),
    recordedAt: row.recorded_at === null ? null : new Date(row.recorded_at).toISOString(),
    type: row.type,
    actor: { type: row.actor_type, id: row.actor_id, name: row.actor_name },
    agent: row.agent_id ? { id: row.agent_id, name: row.agent_name } : null,
    task: row.task_id ? { id: row.task_id, purpose: row.task_purpose } : null,
    outcome: row.outcome,
    effect: row.effect,
    reason: row.reason,
    ruleId: row.rule_id,
    prevHash: row.prev_hash,
    hash: row.hash,
  });
  // data_text is PostgreSQL's own JSON text of a jsonb value (valid JSON, no raw line breaks):
  // spliced in rather than parsed and printed again.
  return `${head.slice(0, -1)},"data":${row.data_text}}\n`;
}
