/**
 * Keyset pages for the dashboard's, the API's and the CLI's lists (tasks, agents, sandboxes, decided
 * approvals, credentials, API keys, approvers, a task's tokens). A list used to stop at its first 500 rows without saying so: with more tasks than that, the older
 * ones could not be found on the Tasks page, through `GET /api/v1/tasks` or with `bulkhead task
 * list`. Now every list is read a page at a time: a page says where the next one starts
 * (`nextCursor`, null on the last page) and the caller passes it back as `cursor`. The cursor is
 * the sort key of the page's last row, so pages never skip or repeat a row however many are
 * added meanwhile (new rows sort before the first page, or after the position already passed).
 */
import { z } from "zod";
import { AppError } from "@/lib/errors/app-error";
import { limitParam } from "@/lib/validation/text";

/** One page of a list: its rows, and the cursor of the next page (null: this is the last). */
export interface ListPage<T> {
  items: T[];
  nextCursor: string | null;
}

/** The most rows a page holds (and the API's default, which was the lists' old fixed length). */
const MAX_PAGE = 500;

/** `limit` in a query string (decimal digits, 1 to 500; `fallback` when absent). */
const pageLimit = (fallback: number = MAX_PAGE) => limitParam(MAX_PAGE, fallback);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const EPOCH_MS = /^\d{1,15}$/;

/** The position after a row of a list ordered by time and id (newest first): tasks, sandboxes. */
interface TimePosition {
  /** The row's time as epoch milliseconds (the columns keep milliseconds), in decimal digits. */
  atMs: string;
  id: string;
}

/** The position after a row of a list ordered by a unique name: agents, credentials, approvers (by email). */
interface NamePosition {
  name: string;
}

type TimeKind = "tasks" | "sandboxes" | "approvals" | "pending approvals" | "api-keys";
/** Lists ordered by time and a token id (jti) rather than a UUID: a task's tokens. */
type TokenKind = "tokens";
type NameKind = "agents" | "credentials" | "approvers";
type Kind = TimeKind | NameKind | TokenKind;

function encode(kind: Kind, key: readonly string[]): string {
  return Buffer.from(JSON.stringify([kind, ...key]), "utf8").toString("base64url");
}

function invalidCursor(kind: Kind): AppError {
  return new AppError("INVALID_INPUT", `cursor is not a position in the ${kind} list: pass the nextCursor of the previous page unchanged`, {
    details: { fieldErrors: { cursor: [`cursor is not a position in the ${kind} list.`] } },
  });
}

/** The key a cursor holds, or an INVALID_INPUT error naming the parameter: never read as "from the start". */
function decode(kind: Kind, cursor: string, length: number): string[] {
  if (cursor.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor(kind);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor(kind);
  }
  if (!Array.isArray(parsed) || parsed.length !== length + 1 || parsed[0] !== kind || !parsed.every((v) => typeof v === "string")) throw invalidCursor(kind);
  return parsed.slice(1) as string[];
}

export function timeCursor(kind: TimeKind, row: TimePosition): string {
  return encode(kind, [row.atMs, row.id]);
}

export function readTimeCursor(kind: TimeKind, cursor: string | undefined): TimePosition | null {
  if (cursor === undefined || cursor === "") return null;
  const [atMs, id] = decode(kind, cursor, 2) as [string, string];
  if (!EPOCH_MS.test(atMs) || !UUID.test(id)) throw invalidCursor(kind);
  return { atMs, id };
}

/** The position after a token in a list ordered by issue time and jti, newest first. */
export function tokenCursor(row: { atMs: string; jti: string }): string {
  return encode("tokens", [row.atMs, row.jti]);
}

const JTI = /^[A-Za-z0-9_-]{1,128}$/;

export function readTokenCursor(cursor: string | undefined): { atMs: string; jti: string } | null {
  if (cursor === undefined || cursor === "") return null;
  const [atMs, jti] = decode("tokens", cursor, 2) as [string, string];
  if (!EPOCH_MS.test(atMs) || !JTI.test(jti)) throw invalidCursor("tokens");
  return { atMs, jti };
}

export function nameCursor(kind: NameKind, row: NamePosition): string {
  return encode(kind, [row.name]);
}

export function readNameCursor(kind: NameKind, cursor: string | undefined): NamePosition | null {
  if (cursor === undefined || cursor === "") return null;
  const [name] = decode(kind, cursor, 1) as [string];
  // Names and emails are at most a few hundred characters; PostgreSQL text cannot hold NUL.
  if (name.length > 400 || name.includes("\0")) throw invalidCursor(kind);
  return { name };
}

/**
 * A page from `limit + 1` rows read: the first `limit`, and the cursor after the last of them when
 * there was one more.
 */
export function pageOf<R, T>(rows: R[], limit: number, view: (row: R) => T, cursorOf: (row: R) => string): ListPage<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  return { items: kept.map(view), nextCursor: more && kept.length > 0 ? cursorOf(kept[kept.length - 1]!) : null };
}

/** Every row of a list, page after page (for the CLI, and for pickers that must offer every row). */
export async function everyPage<T>(read: (cursor: string | undefined) => Promise<ListPage<T>>): Promise<T[]> {
  const all: T[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await read(cursor);
    all.push(...page.items);
    if (page.nextCursor === null) return all;
    cursor = page.nextCursor;
  }
}

/** What a caller asks of a list: where to start (a `nextCursor`) and how many rows (1 to 500). */
export interface PageRequest {
  cursor?: string;
  /** A number, or the text of a query string's `limit`; absent: 500. */
  limit?: number | string;
}

/** The page size asked for, or an INVALID_INPUT error that says what a limit must be. */
export function readLimit(limit: PageRequest["limit"]): number {
  const parsed = z.object({ limit: pageLimit() }).safeParse({ limit: limit === "" ? undefined : limit });
  if (parsed.success) return parsed.data.limit;
  const message = parsed.error.issues[0]?.message ?? `limit must be a whole number from 1 to ${MAX_PAGE}`;
  throw new AppError("INVALID_INPUT", message, { details: { fieldErrors: { limit: [`${message}.`] } } });
}
