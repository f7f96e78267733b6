/**
 * Helpers for read-only queries that run through either driver (lib/audit/sql.ts: the dashboard's
 * Prisma client or a plain pg client). Times travel as epoch milliseconds in text (the columns keep
 * milliseconds) and everything else as text, so both drivers hand back the same JavaScript values
 * and a listing reads the same whichever process runs it.
 */

/** `column` as epoch milliseconds in text; NULL stays NULL. */
export const epochMs = (column: string) => `(extract(epoch FROM ${column}) * 1000)::bigint::text`;

/** The Date an `epochMs` column holds. */
export function dateOf(ms: string): Date;
export function dateOf(ms: string | null): Date | null;
export function dateOf(ms: string | null): Date | null {
  return ms === null ? null : new Date(Number(ms));
}

/**
 * The LIKE pattern of Prisma's `contains` filter: `text` anywhere, with `%` and `_` in it left as
 * the wildcards they are (Prisma does not escape them), so a listing filtered here matches exactly
 * what the same filter matched through Prisma.
 */
export const containsPattern = (text: string) => `%${text}%`;
