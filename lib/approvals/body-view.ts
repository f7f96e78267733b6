import { parse as parseGraphql, print as printGraphql } from "graphql";
import { effectRank, type SemanticAction } from "@/lib/semantics/types";

/**
 * The body of a held request as an approver reads it: pretty-printed where its format is known
 * (JSON, GraphQL inside JSON, SQL), cut at a size a page can show (the approval still binds to
 * the whole body, through the digest), and split into plain and highlighted segments: the
 * operations and resources of destructive or irreversible actions, and JSON keys that ask for
 * destruction (`"also_delete_all_backups": true`). Pure and linear in the body's size.
 */
/** `withheld`: the body exists but the reader's role does not read held bodies (card.ts). */
export type BodyFormat = "json" | "graphql" | "sql" | "text" | "binary" | "empty" | "withheld";
export interface BodySegment {
  text: string;
  mark: boolean;
}
export interface BodyView {
  format: BodyFormat;
  size: number;
  shown: number;
  truncated: boolean;
  /** Highlighted parts that lie (or continue) beyond the part shown: the card says so. */
  marksBeyond: number;
  segments: BodySegment[];
}

export const CARD_BODY_LIMIT = 16 * 1024;
const DANGEROUS_WORD = /delete|drop|destroy|purge|wipe|truncate|remove|force|overwrite|erase|reset/i;

/** JSON keys (quoted, followed by a colon) that ask for destruction: one pass over the quotes. */
function dangerousKeys(text: string, found: Array<[number, number]>): void {
  let at = text.indexOf('"');
  while (at !== -1 && found.length < 2000) {
    const close = text.indexOf('"', at + 1);
    if (close === -1) return;
    let after = close + 1;
    while (text[after] === " ") after++;
    if (text[after] === ":" && close - at <= 200 && DANGEROUS_WORD.test(text.slice(at + 1, close))) found.push([at, after + 1]);
    at = text.indexOf('"', close + 1);
  }
}

function decodeText(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function prettyGraphql(query: string): string {
  try {
    return printGraphql(parseGraphql(query, { noLocation: true }));
  } catch {
    return query;
  }
}

function prettySql(sql: string): string {
  return sql.replace(/;\s*/g, ";\n").trim();
}

/** The text to show and its format. */
function render(bytes: Uint8Array, contentType: string, sqlService: boolean): { format: BodyFormat; text: string } {
  if (bytes.byteLength === 0) return { format: "empty", text: "" };
  const text = decodeText(bytes);
  if (text === null) return { format: "binary", text: `${bytes.byteLength} bytes that are not UTF-8 text` };
  if (/graphql/i.test(contentType)) return { format: "graphql", text: prettyGraphql(text) };
  if (/sql/i.test(contentType)) return { format: "sql", text: prettySql(text) };
  try {
    const value: unknown = JSON.parse(text);
    // A GraphQL request's query (and a SQL-over-HTTP statement) reads best as its own language.
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const record = value as Record<string, unknown>;
      const { query, ...rest } = record;
      if (typeof query === "string") {
        const lang: BodyFormat = sqlService ? "sql" : "graphql";
        const head = lang === "sql" ? prettySql(query) : prettyGraphql(query);
        const others = Object.keys(rest).length > 0 ? `\n\n${JSON.stringify(rest, null, 2)}` : "";
        return { format: lang, text: `${head}${others}` };
      }
    }
    return { format: "json", text: JSON.stringify(value, null, 2) };
  } catch {
    return { format: sqlService ? "sql" : "text", text: sqlService ? prettySql(text) : text };
  }
}

/** Case-insensitive occurrences of the needles, merged into sorted, non-overlapping ranges. */
function ranges(text: string, needles: string[]): Array<[number, number]> {
  const lower = text.toLowerCase();
  const found: Array<[number, number]> = [];
  for (const needle of new Set(needles.map((n) => n.toLowerCase()).filter((n) => n.length >= 2 && n !== "-"))) {
    for (let at = lower.indexOf(needle); at !== -1 && found.length < 1000; at = lower.indexOf(needle, at + needle.length)) found.push([at, at + needle.length]);
  }
  dangerousKeys(text, found);
  found.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of found) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

export function bodyView(
  body: Uint8Array | null,
  options: { contentType: string; sqlService: boolean; actions: readonly SemanticAction[]; limit?: number | null },
): BodyView {
  const bytes = body ?? new Uint8Array();
  const { format, text: full } = render(bytes, options.contentType, options.sqlService);
  const limit = options.limit === null ? Infinity : (options.limit ?? CARD_BODY_LIMIT);
  const text = full.length > limit ? full.slice(0, limit) : full;
  const dangerous = options.actions.filter((a) => effectRank(a.effect) >= 2);
  const needles = dangerous.flatMap((a) => {
    return [a.operation, a.resource];
  });
  const segments: BodySegment[] = [];
  let at = 0;
  // An agent can pad the body (a long comment, whitespace) so that what is dangerous starts after
  // the part shown; the highlights are found in the whole text, and those beyond are counted.
  const marks = format === "binary" ? [] : ranges(full, needles);
  const marksBeyond = marks.filter(([, end]) => end > text.length).length;
  for (const [start, end] of marks.filter(([s]) => s < text.length).map(([s, e]) => [s, Math.min(e, text.length)] as const)) {
    if (start > at) segments.push({ text: text.slice(at, start), mark: false });
    segments.push({ text: text.slice(start, end), mark: true });
    at = end;
  }
  if (at < text.length) segments.push({ text: text.slice(at), mark: false });
  return { format, size: bytes.byteLength, shown: text.length, truncated: text.length < full.length, marksBeyond, segments };
}
