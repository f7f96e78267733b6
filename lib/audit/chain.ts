/**
 * The audit hash chain's canonical text, version 1: the exact bytes that the database trigger
 * hashes (prisma/migrations/20261125000300_audit_hash_chain), recomputed here so that a verifier
 * does not have to trust the database's arithmetic.
 *
 *   bulkhead-audit-v1|<seq>|<prevHash>|<at>|<type>|<actorType>|<actorId>|<agentId>|<taskId>
 *     |<outcome>|<effect>|<reason>|<ruleId>|<data>
 *
 * seq in decimal, prevHash as 64 lowercase hex digits, at as YYYY-MM-DDTHH:MM:SS.mmmZ (UTC).
 * Each later field is "-" for NULL or "<UTF-8 byte length>:<value>", so "|" inside a value,
 * empty strings and NULL cannot be confused. data is PostgreSQL's jsonb text form (`data::text`).
 * hash = lowercase hex SHA-256 of the text's UTF-8 bytes.
 */
import { createHash } from "node:crypto";

export const CHAIN_TEXT_VERSION = "bulkhead-audit-v1";
/** prevHash of the first event. */
export const GENESIS_HASH = "0".repeat(64);

/** The stored columns that the hash covers. */
export interface ChainedEventFields {
  seq: bigint | number | string;
  prevHash: string;
  /** Millisecond precision, as the column stores it. */
  at: Date;
  type: string;
  actorType: string;
  actorId: string | null;
  agentId: string | null;
  taskId: string | null;
  outcome: string | null;
  effect: string | null;
  reason: string | null;
  ruleId: string | null;
  /** `data::text` as PostgreSQL prints it; for a JavaScript value use `jsonbText(value)`. */
  dataText: string;
}

function field(value: string | null): string {
  return value === null ? "-" : `${Buffer.byteLength(value, "utf8")}:${value}`;
}

export function canonicalEventText(row: ChainedEventFields): string {
  return [
    CHAIN_TEXT_VERSION,
    BigInt(row.seq).toString(),
    row.prevHash,
    row.at.toISOString(),
    field(row.type),
    field(row.actorType),
    field(row.actorId),
    field(row.agentId),
    field(row.taskId),
    field(row.outcome),
    field(row.effect),
    field(row.reason),
    field(row.ruleId),
    field(row.dataText),
  ].join("|");
}

export function eventHash(row: ChainedEventFields): string {
  return createHash("sha256").update(canonicalEventText(row), "utf8").digest("hex");
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * PostgreSQL's text form of the jsonb value that `JSON.stringify(value)` becomes: object keys
 * ordered by UTF-8 length then bytewise (duplicates cannot occur), ", " and ": " separators,
 * numbers as plain decimals (jsonb stores them as numeric), strings escaped like escape_json().
 */
export function jsonbText(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError("value is not representable as JSON");
  return render(JSON.parse(text) as JsonValue);
}

function render(value: JsonValue): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return plainDecimal(JSON.stringify(value));
  if (typeof value === "string") return quote(value);
  if (Array.isArray(value)) return `[${value.map(render).join(", ")}]`;
  const keys = Object.keys(value).sort(compareJsonbKeys);
  return `{${keys.map((k) => `${quote(k)}: ${render(value[k]!)}`).join(", ")}}`;
}

function compareJsonbKeys(a: string, b: string): number {
  const ab = Buffer.from(a, "utf8");
  const bb = Buffer.from(b, "utf8");
  return ab.length - bb.length || Buffer.compare(ab, bb);
}

const ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function quote(s: string): string {
  const body = s.replace(/["\\\u0000-\u001f]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return `"${body}"`;
}

/** "1.5e-7" -> "0.00000015", "1e+21" -> "1000000000000000000000": how numeric prints them. */
function plainDecimal(num: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(num);
  if (!m) throw new TypeError(`unexpected number syntax ${num}`);
  const [, sign, int = "", frac = "", exp] = m;
  if (exp === undefined) return num;
  const e = Number(exp);
  const digits = int + frac;
  const point = int.length + e; // position of the decimal point within digits
  let out: string;
  if (point <= 0) out = `0.${"0".repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + "0".repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  out = out.replace(/^0+(?=\d)/, "");
  return sign + out;
}
