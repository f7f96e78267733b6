import { z } from "zod";
import { isStorableText, UNSTORABLE_TEXT_MESSAGE } from "@/lib/audit/sanitise";

/**
 * Text that PostgreSQL can store: no NUL characters (text and jsonb refuse them) and no UTF-16
 * halves without their partner (jsonb refuses those, and they are not characters at all). Input
 * that carries them is refused with a 400 naming the field, never turned into a 500 by the
 * driver, and never silently changed.
 */
export { UNSTORABLE_TEXT_MESSAGE };

/** A zod string that refuses NUL and lone surrogates: `storableText()`, or refine an existing z.string(). */
export function storableText(what?: string) {
  return z.string().refine(isStorableText, what ? `${what} ${UNSTORABLE_TEXT_MESSAGE}` : UNSTORABLE_TEXT_MESSAGE);
}

/** The refinement alone, for schemas built elsewhere: `z.string().max(200).refine(...storable("note"))`. */
export function storable(what: string): [(value: string) => boolean, string] {
  return [isStorableText, `${what} ${UNSTORABLE_TEXT_MESSAGE}`];
}

/**
 * Characters that change how a name looks without being seen: controls (Cc: newline, escape,
 * bell), format characters (Cf: zero-width spaces and joiners, bidi overrides such as U+202E that
 * display `ops\u202Egnp.exe` as `opsexe.png`, the BOM), line and paragraph separators, and the
 * rest of Unicode's default-ignorable code points (Hangul fillers, variation selectors).
 */
const UNSEEN_IN_NAMES = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;

/**
 * A free-text name people tell objects apart by (an API key's, a webhook's, a person's), shown in
 * the dashboard and recorded in the audit log: refused when it holds a character that is not seen
 * (two names that look the same would be two objects), and stored in Unicode NFC, so `é` typed
 * as one character and as `e` + combining accent are the same name.
 */
export function visibleName(schema: z.ZodString, what: string) {
  return schema
    .refine((v) => !UNSEEN_IN_NAMES.test(v), `${what} must not contain control, invisible or direction-changing characters, which make names look alike.`)
    .transform((v) => v.normalize("NFC"));
}

/**
 * Characters that change how free text reads without being seen, in text people read as
 * written (a description, a purpose): direction overrides, embeddings and isolates, and the
 * bidi marks (`desc \u202Egnp.exe` shows as `desc exe.png`), and controls other than line
 * breaks and tabs. Joiners and variation selectors are allowed here (emoji use them).
 */
const UNSEEN_IN_TEXT = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]|(?![\t\n\r])\p{Cc}/u;

/** Free text shown as written: refused when it holds a direction-changing character or a control (see UNSEEN_IN_TEXT). */
export function readableText(schema: z.ZodString, what: string) {
  return schema.refine((v) => !UNSEEN_IN_TEXT.test(v), `${what} must not contain control or direction-changing characters, which make text read other than it is.`);
}

/** A value still to look at, and how it was reached (its parent's node and its key there). */
interface Visit {
  value: unknown;
  key: string | number | null;
  parent: Visit | null;
}

function pathOf(visit: Visit): (string | number)[] {
  const path: (string | number)[] = [];
  for (let v: Visit | null = visit; v && v.key !== null; v = v.parent) path.push(v.key);
  return path.reverse();
}

/**
 * The path of the first string (value or key) in a parsed JSON value, a form or query parameters
 * that cannot be stored, or null. Walked with a stack of its own, not by recursion: JSON.parse
 * accepts nesting far deeper than the call stack (a body of a million `[` is 2 MB), and such a
 * body must get its 400 from the route's schema, not a stack overflow here. Bounded: a body is at
 * most MAX_JSON_BODY_BYTES, and each value is visited once.
 */
export function unstorableTextPath(value: unknown, base: (string | number)[] = []): (string | number)[] | null {
  const stack: Visit[] = [{ value, key: null, parent: null }];
  while (stack.length > 0) {
    const visit = stack.pop()!;
    const v = visit.value;
    if (typeof v === "string") {
      if (!isStorableText(v)) return [...base, ...pathOf(visit)];
      continue;
    }
    if (v instanceof FormData || v instanceof URLSearchParams) {
      for (const [key, item] of v.entries()) {
        if (!isStorableText(key) || (typeof item === "string" && !isStorableText(item))) return [...base, ...pathOf(visit), key];
      }
      continue;
    }
    if (Array.isArray(v)) {
      // Pushed last to first, so that the first element is looked at first.
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: i, parent: visit });
      continue;
    }
    if (v !== null && typeof v === "object") {
      const entries = Object.entries(v);
      for (const [key] of entries) if (!isStorableText(key)) return [...base, ...pathOf(visit), key];
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i]![1], key: entries[i]![0], parent: visit });
    }
  }
  return null;
}

/** Throws a ZodError (400 in routes, a field error in forms) when any text in `value` cannot be stored. */
export function assertStorableText(value: unknown, where?: string): void {
  const found = unstorableTextPath(value);
  if (!found) return;
  // A path deep inside a nested body is named by its start and its depth, not echoed whole.
  const path = found.length > 16 ? [...found.slice(0, 8), `... (${found.length} levels)`] : found;
  const name = path.length > 0 ? path.join(".") : (where ?? "the input");
  throw new z.ZodError([{ code: "custom", path, message: `${name} ${UNSTORABLE_TEXT_MESSAGE}`, input: undefined }]);
}

/**
 * A page size in a query string: decimal digits only, from 1 to `max` (`fallback` when absent).
 * `Number()`, as `z.coerce.number()` uses it, also takes `0x10`, `1e2`, `" 7"` and `""` (zero).
 */
export function limitParam(max: number, fallback: number) {
  const sentence = `limit must be a whole number from 1 to ${max}, in decimal digits`;
  return z
    .preprocess(
      (v) => (typeof v === "number" ? String(v) : v),
      z
        .string(sentence)
        .trim()
        .regex(/^\d{1,6}$/, sentence)
        .transform(Number)
        .pipe(z.number().min(1, "limit must be at least 1").max(max, `limit must be at most ${max}`)),
    )
    .optional()
    .transform((v) => v ?? fallback);
}
