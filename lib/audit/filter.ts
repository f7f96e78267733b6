/**
 * The audit log's filters: one shape for the page, `GET /api/v1/audit`, the exports and
 * `bulkhead audit export`. Values arrive as query-string text (repeated or comma-separated for
 * the multi-valued ones) and are validated here; a value that cannot match anything is refused
 * with a sentence rather than silently ignored.
 */
import { z } from "zod";
import { EFFECTS } from "@/lib/semantics/types";
import { limitParam, storable } from "@/lib/validation/text";

const MAX_VALUES = 20;

/** `a,b` and repeated parameters both become ["a", "b"]; empty items are dropped. */
const list = <T extends z.ZodType<string, string>>(item: T, what: string) =>
  z
    .union([z.string(), z.array(z.string())])
    .optional()
    .transform((v) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean)))
    .pipe(z.array(item).max(MAX_VALUES, `at most ${MAX_VALUES} ${what} at once`));

/** The range of times a filter may name: PostgreSQL's timestamptz cannot hold year 0, and nothing Bulkhead recorded is older than 1970. */
export const MIN_INSTANT = new Date("1970-01-01T00:00:00Z");
export const MAX_INSTANT = new Date("9999-12-31T23:59:59.999Z");

const instant = (what: string) =>
  z
    .string()
    .trim()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return undefined;
      const example = `${what} must be a date or an ISO 8601 time, e.g. 2026-12-01T09:30:00Z`;
      // A bare date or a datetime-local value (no zone) is read as UTC, like every time on the page.
      const text = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(v) ? `${v}Z` : v;
      const parts = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(text);
      const d = new Date(text);
      if (!parts || Number.isNaN(d.getTime())) {
        ctx.addIssue({ code: "custom", message: example });
        return z.NEVER;
      }
      // Date() rolls 2026-02-31 over to 3 March and 24:00 to the next day: a date that does not exist is refused.
      const [, year, month, day, hour, minute] = parts.map(Number);
      const calendar = new Date(0);
      calendar.setUTCFullYear(year!, month! - 1, day!); // not Date.UTC: it reads years 0-99 as 1900-1999
      calendar.setUTCHours(hour!, minute!);
      if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month! - 1 || calendar.getUTCDate() !== day || calendar.getUTCHours() !== hour || calendar.getUTCMinutes() !== minute) {
        ctx.addIssue({ code: "custom", message: `${what} is not a real date or time (${v.slice(0, 40)}); ${example}` });
        return z.NEVER;
      }
      if (d < MIN_INSTANT || d > MAX_INSTANT) {
        ctx.addIssue({ code: "custom", message: `${what} must be between 1970-01-01 and 9999-12-31 (UTC)` });
        return z.NEVER;
      }
      return d;
    });

/** The largest seq PostgreSQL's bigint can hold. */
export const MAX_SEQ = 9223372036854775807n;

/** Whether `text` is a seq that can exist: a positive integer no larger than bigint's maximum. */
export function isSeqText(text: string): boolean {
  return /^[1-9]\d{0,18}$/.test(text) && BigInt(text) <= MAX_SEQ;
}

const seqParam = (what: string) =>
  z
    .string()
    .trim()
    .refine(isSeqText, `${what} must be an event's seq (a positive integer, at most ${MAX_SEQ})`)
    .optional()
    .transform((v) => (v === undefined ? undefined : BigInt(v)));

const token = /^[A-Za-z0-9_.:*-]+$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Everything a caller may send; all optional. */
export const auditFilterShape = {
    from: instant("from").meta({ description: "Only events at or after this time (ISO 8601; a bare date is midnight UTC)." }),
    to: instant("to").meta({ description: "Only events before this time." }),
    agent: z.string().trim().max(200).refine(...storable("agent")).optional().meta({ description: "An agent's id or exact name." }),
    task: z
      .string()
      .trim()
      .toLowerCase()
      .optional()
      .refine((v) => v === undefined || UUID.test(v), "task must be a task's id (a uuid)")
      .meta({ description: "A task's id." }),
    user: z.string().trim().max(320).refine(...storable("user")).optional().meta({ description: "Events done by this dashboard user: id or email." }),
    type: list(z.string().max(100).regex(token, "an event type looks like proxy.decision, or proxy.* for a whole kind"), "event types").meta({
      description: "Event types, comma-separated; `proxy.*` (or `proxy.`) matches a whole kind.",
    }),
    outcome: list(z.string().max(32).regex(/^[a-z_]+$/, "an outcome is a lower-case word such as allow, deny, hold, approve"), "outcomes").meta({
      description: "Outcomes, comma-separated: allow, deny, hold, approve, reject, cancel, forwarded, failed, …",
    }),
    effect: list(z.enum(EFFECTS, { error: `an effect is one of ${EFFECTS.join(", ")}` }), "effects").meta({ description: "The decision's effect." }),
    service: list(z.string().max(100).regex(token, "a service id looks like github or railway"), "services").meta({ description: "Services any semantic action touched." }),
    environment: list(z.string().max(100).regex(token, "an environment looks like production"), "environments").meta({ description: "Environments any semantic action touched." }),
    q: z
      .string()
      .trim()
      .max(200, "the search text is at most 200 characters")
      .refine(...storable("the search text"))
      .optional()
      .transform((v) => (v === "" ? undefined : v))
      .refine((v) => v === undefined || [...v].length >= 3, "search for at least 3 characters (shorter text cannot use the search index)")
      .meta({ description: "Free text, at least 3 characters, matched anywhere in the URL, operation, resource, reason, method, service or refusal code (case-insensitive)." }),
};

export const auditFilterInput = z
  .object(auditFilterShape)
  .superRefine((f, ctx) => {
    if (f.from && f.to && f.from >= f.to) ctx.addIssue({ code: "custom", path: ["to"], message: "to must be later than from" });
  });

export type AuditFilterInput = z.input<typeof auditFilterInput>;
export type AuditFilter = z.output<typeof auditFilterInput>;

/** Page position: `before` (older than this seq, the default direction) or `after` (newer). */
export const auditPageInput = z
  .object({
    cursor: seqParam("cursor").meta({ description: "`nextCursor` of the previous page: events older than this seq." }),
    after: seqParam("after").meta({ description: "`prevCursor` of a page: events newer than this seq (the page before it). Not together with cursor." }),
    // Decimal digits only: Number() would also take 0x10, 1e2, " 7" or "".
    limit: limitParam(500, 50).meta({ description: "Events per page, 1-500 (default 50)." }),
  })
  .refine((p) => p.cursor === undefined || p.after === undefined, { path: ["after"], message: "give cursor (older events) or after (newer events), not both" });

export type AuditPageInput = z.input<typeof auditPageInput>;

const FILTER_KEYS = ["from", "to", "agent", "task", "user", "type", "outcome", "effect", "service", "environment", "q"] as const;
const MULTI = new Set(["type", "outcome", "effect", "service", "environment"]);

/** The query parameters of a filtered read (the export), and of a page of the log. */
export const AUDIT_FILTER_QUERY = { names: FILTER_KEYS, repeatable: [...MULTI] } as const;
export const AUDIT_PAGE_QUERY = { names: [...FILTER_KEYS, "cursor", "after", "limit"], repeatable: [...MULTI] } as const;

/** Query-string parameters (URLSearchParams or Next's searchParams object) as the zod input. */
export function filterParams(params: URLSearchParams | Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  const get = (k: string): string[] => {
    if (params instanceof URLSearchParams) return params.getAll(k);
    const v = params[k];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  };
  for (const key of [...FILTER_KEYS, "cursor", "after", "limit"]) {
    const values = get(key).filter((v) => v !== "");
    if (values.length === 0) continue;
    out[key] = MULTI.has(key) ? values : values[0];
  }
  return out;
}

/** The filter as plain JSON, for audit events about reading the audit ("what filter"). */
export function describeFilter(f: AuditFilter): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (f.from) out.from = f.from.toISOString();
  if (f.to) out.to = f.to.toISOString();
  for (const k of ["agent", "task", "user", "q"] as const) if (f[k] !== undefined) out[k] = f[k]!;
  for (const k of ["type", "outcome", "effect", "service", "environment"] as const) if (f[k].length > 0) out[k] = [...f[k]];
  return out;
}

/** The filter back as query-string pairs (links to other pages and exports keep it). */
export function filterToSearchParams(f: AuditFilter): URLSearchParams {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(describeFilter(f))) p.set(k, Array.isArray(v) ? v.join(",") : v);
  return p;
}

export function isEmptyFilter(f: AuditFilter): boolean {
  return Object.keys(describeFilter(f)).length === 0;
}
