import { z } from "zod";
import { isStorableText } from "@/lib/audit/sanitise";

/**
 * Text that PostgreSQL can store: no NUL characters (text and jsonb refuse them) and no UTF-16
 * halves without their partner (jsonb refuses those, and they are not characters at all). Input
 * that carries them is refused with a 400 naming the field, never turned into a 500 by the
 * driver, and never silently changed.
 */
export const UNSTORABLE_TEXT_MESSAGE = "must not contain NUL characters (\\u0000) or unpaired UTF-16 surrogates";

/** A zod string that refuses NUL and lone surrogates: `storableText()`, or refine an existing z.string(). */
export function storableText(what?: string) {
  return z.string().refine(isStorableText, what ? `${what} ${UNSTORABLE_TEXT_MESSAGE}` : UNSTORABLE_TEXT_MESSAGE);
}

/** The refinement alone, for schemas built elsewhere: `z.string().max(200).refine(...storable("note"))`. */
export function storable(what: string): [(value: string) => boolean, string] {
  return [isStorableText, `${what} ${UNSTORABLE_TEXT_MESSAGE}`];
}

/**
 * The path of the first string (value or key) in a parsed JSON value, a form or query parameters
 * that cannot be stored, or null. Bounded: a body is at most MAX_JSON_BODY_BYTES, and the walk
 * visits each value once.
 */
export function unstorableTextPath(value: unknown, path: (string | number)[] = []): (string | number)[] | null {
  if (typeof value === "string") return isStorableText(value) ? null : path;
  if (value instanceof FormData || value instanceof URLSearchParams) {
    for (const [key, item] of value.entries()) {
      if (!isStorableText(key)) return [...path, key];
      if (typeof item === "string" && !isStorableText(item)) return [...path, key];
    }
    return null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unstorableTextPath(value[i], [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (!isStorableText(key)) return [...path, key];
      const found = unstorableTextPath(item, [...path, key]);
      if (found) return found;
    }
  }
  return null;
}

/** Throws a ZodError (400 in routes, a field error in forms) when any text in `value` cannot be stored. */
export function assertStorableText(value: unknown, where?: string): void {
  const path = unstorableTextPath(value);
  if (!path) return;
  const name = path.length > 0 ? path.join(".") : (where ?? "the input");
  throw new z.ZodError([{ code: "custom", path, message: `${name} ${UNSTORABLE_TEXT_MESSAGE}`, input: undefined }]);
}
