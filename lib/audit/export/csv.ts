/**
 * CSV (RFC 4180): CRLF line ends, every field quoted, quotes doubled, so commas, quotes, CR and
 * LF inside a value stay inside its field. Every cell is also neutralised against formula
 * injection: a spreadsheet treats a cell that starts with = + - @ (or their full-width forms),
 * a tab or a CR as a formula or a command, so such a cell (also after leading spaces or line
 * breaks, which some spreadsheets skip) gets a leading apostrophe and is shown as text. Much of
 * an event is chosen by an agent (URL, operation, resource, reason, data), and the rest costs
 * nothing to treat the same way.
 */
import type { AuditRow } from "../search";
import { actionsLeftOutOf, actionsOf, parseData, requestOf } from "../view";

const FORMULA_START = /^[\s\u00a0]*[=+\-@\t\r\n\uff1d\uff0b\uff0d\uff20]/;

/** One field, neutralised and quoted. */
export function csvCell(value: string | null | undefined): string {
  if (value === null || value === undefined || value === "") return '""';
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return `"${safe.replace(/"/g, '""')}"`;
}

export const CSV_COLUMNS = [
  "seq",
  "at",
  "type",
  "outcome",
  "effect",
  "actor_type",
  "actor_id",
  "actor_name",
  "agent_id",
  "agent_name",
  "task_id",
  "task_purpose",
  "method",
  "url",
  "service",
  "actions",
  "reason",
  "rule_id",
  "data",
  "prev_hash",
  "hash",
  "recorded_at",
] as const;

export function csvHeader(): string {
  return `${CSV_COLUMNS.map(csvCell).join(",")}\r\n`;
}

/** "service/environment: operation resource (effect)" per semantic action, "; "-separated; every one, and how many the record lacks. */
function actionsText(data: unknown): string {
  const listed = actionsOf(data).map((a) => `${a.service}/${a.environment}: ${a.operation} ${a.resource} (${a.effect})`);
  const leftOut = actionsLeftOutOf(data);
  if (leftOut > 0) listed.push(`${leftOut} more actions not in the record`);
  return listed.join("; ");
}

export function csvRow(row: AuditRow): string {
  const data = parseData(row.data_text);
  const req = requestOf(data);
  const cells = [
    row.seq,
    new Date(row.at).toISOString(),
    row.type,
    row.outcome,
    row.effect,
    row.actor_type,
    row.actor_id,
    row.actor_name,
    row.agent_id,
    row.agent_name,
    row.task_id,
    row.task_purpose,
    req?.method,
    req?.url,
    req?.service,
    actionsText(data),
    row.reason,
    row.rule_id,
    row.data_text,
    row.prev_hash,
    row.hash,
    row.recorded_at === null ? null : new Date(row.recorded_at).toISOString(),
  ];
  return `${cells.map(csvCell).join(",")}\r\n`;
}
