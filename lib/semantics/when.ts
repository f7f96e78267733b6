/**
 * `when` conditions in descriptors: "this route/field is more dangerous if the body says so"
 * (GitHub `force: true`, Railway `replace: true`). Comparison is lenient on purpose, because an
 * escalation that a loosely-typed server would still honour must not be dodged by spelling
 * `true` as `"true"` or `1`, nor as a string that JavaScript reads as true (`"false"`, `"no"`),
 * nor `false` as `"f"` or `null`.
 */
import type { When } from "@/lib/semantics/descriptors/schema";
import { foldKey, property } from "@/lib/semantics/json";
import { reject, type Rejection } from "@/lib/semantics/types";

/** A key spelled differently from the one Bulkhead reads, which a case-insensitive server takes for it. */
export function variantRejection(expected: string, variant: string): Rejection {
  return reject(
    "json_key_variant",
    `key ${JSON.stringify(variant.slice(0, 80))} differs only in case or form from ${JSON.stringify(expected)}: servers that match keys case-insensitively would read it as ${JSON.stringify(expected)}`,
  );
}

/** Reads one key exactly; a case or form variant of it in its place is a rejection. */
export function readField(obj: object, key: string): { ok: true; value: unknown } | Rejection {
  const found = property(obj, key);
  return found.ok ? found : variantRejection(key, found.variant);
}

/**
 * Reads a dotted path ("input.force") from nested plain objects; undefined when absent. A path
 * whose key is missing but present in another case (`Force`) is a rejection, never "absent".
 */
export function lookupPath(value: unknown, path: string): { ok: true; value: unknown } | Rejection {
  let current: unknown = value;
  for (const key of path.split(".")) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return { ok: true, value: undefined };
    const found = property(current, key);
    if (!found.ok) return variantRejection(key, found.variant);
    current = found.value;
  }
  return { ok: true, value: current };
}

/**
 * Every value a dotted path reaches when the lists on its way are read element by element
 * (`input.id` in `{input: [{id: "a"}, {id: "b"}]}` reaches "a" and "b"), as a server that acts
 * on each element does. Absent keys reach nothing; a key present only in another case is a
 * rejection, as in `lookupPath`. Lists nested more than 64 deep on the way are refused
 * (`arguments_too_deep`), never skipped: what is not read cannot be judged.
 */
const MAX_LIST_NESTING = 64;

/**
 * A key's name as servers that accept either of its spellings read it: case folded, `_` and `-`
 * dropped (`volume_id`, `volumeId`, `VolumeID` and `volume-id` are one name to pydantic models
 * with an alias generator that populate by name, or to camel/snake converting middleware).
 */
export function spellingFree(key: string): string {
  return foldKey(key).replace(/[_-]/g, "");
}

/**
 * `lookupAll`, with `aliases`: at each step the object's other keys that are the same name in
 * another spelling (`spellingFree`) are followed too, so an argument sent as `volumeId` where
 * `volume_id` is read is not a missing one.
 */
export function lookupAll(value: unknown, path: string, options: { aliases?: boolean } = {}): { ok: true; values: unknown[] } | Rejection {
  const out: unknown[] = [];
  const walk = (current: unknown, keys: readonly string[], lists: number): Rejection | null => {
    if (keys.length === 0) {
      if (current !== undefined) out.push(current);
      return null;
    }
    if (Array.isArray(current)) {
      if (lists >= MAX_LIST_NESTING) {
        return reject("arguments_too_deep", `"${path.slice(0, 80)}" is reached through lists nested more than ${MAX_LIST_NESTING} deep; the resources it names cannot all be read`);
      }
      for (const item of current) {
        const failed = walk(item, keys, lists + 1);
        if (failed) return failed;
      }
      return null;
    }
    if (typeof current !== "object" || current === null) return null;
    const [key = "", ...rest] = keys;
    const found = property(current, key);
    if (!found.ok) return variantRejection(key, found.variant);
    const failed = walk(found.value, rest, lists);
    if (failed || !options.aliases) return failed;
    const loose = spellingFree(key);
    for (const other of Object.keys(current)) {
      if (other === key || spellingFree(other) !== loose) continue;
      const again = walk((current as Record<string, unknown>)[other], rest, lists);
      if (again) return again;
    }
    return null;
  };
  const failed = walk(value, path.split("."), 0);
  return failed ?? { ok: true, values: out };
}

/**
 * Could some server read this value as `true`? JavaScript's and Python's truthiness (`if
 * (body.force)`: any non-empty string, `"false"` and `"no"` included, any number but 0, any
 * object or list), Rails' cast (anything but its few false values: `"no"` is true there) and
 * Ruby's own truthiness (`if params[:force]`: everything but `nil` and `false`, so `0` and `""`
 * too) read far more values as true than a strict boolean does; only `false` and `null` are false
 * to all of them.
 */
function mayBeTrue(value: unknown): boolean {
  return value !== undefined && value !== null && value !== false;
}

/**
 * Could some server read this value as `false`? Falsy in JavaScript or Python (`null`, `0`, `""`,
 * an empty list or object), or any string but `"true"` in some case: Java's
 * `Boolean.parseBoolean` reads every other string as false (`"yes"`, `"1"`, `"on"`, `" true"` and
 * `"maybe"` included), which covers the false words of every other boolean cast (`"f"` in Rails
 * and Go, `"off"` in PHP, `"0.0"` as a number).
 */
function mayBeFalse(value: unknown): boolean {
  if (value === false || value === null || value === 0) return true;
  if (typeof value === "string") return value.toLowerCase() !== "true";
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === "object" && value !== null) return Object.keys(value).length === 0;
  return false;
}

/** The text without whitespace or NULs at either end. */
function unpadded(text: string): string {
  return text.replace(/^[\s\0]+|[\s\0]+$/g, "");
}

/**
 * Does `actual` meet the condition? `exact` when every server reads it so (the JSON value itself:
 * `true` for `true`, the number for a number, the string in its own case); otherwise only some
 * servers do (`"false"` is true to JavaScript's `if`, `"f"` false to Rails), and the request has
 * two readings: with the condition's route or field and without it.
 */
function matches(expected: string | number | boolean | null, actual: unknown): "exact" | "loose" | "no" {
  if (expected === null) return actual === null ? "exact" : "no";
  // A boolean condition matches any value some server reads as that boolean.
  if (typeof expected === "boolean") {
    if (actual === expected) return "exact";
    return (expected ? mayBeTrue(actual) : mayBeFalse(actual)) ? "loose" : "no";
  }
  if (typeof expected === "number") {
    if (actual === expected) return "exact";
    return actual !== null && actual !== "" && Number(actual) === expected ? "loose" : "no";
  }
  if (actual === expected) return "exact";
  // Another case, or padded with whitespace a server may trim (`" public"`, `"public\t"`).
  return typeof actual === "string" && unpadded(actual).toLowerCase() === expected.toLowerCase() ? "loose" : "no";
}

/**
 * Does the body match every condition? `exact` is false when some condition matched only as
 * some servers read the value (`"false"` for `true`): then a server may also run the request as
 * if the condition did not hold, and the caller judges both readings (the stricter wins), so a
 * condition can neither raise nor lower an effect on a value servers disagree about. A condition
 * key spelled in another case is a rejection.
 */
export function matchWhen(when: When | undefined, value: unknown): { ok: true; match: boolean; exact: boolean } | Rejection {
  if (when === undefined) return { ok: true, match: true, exact: true };
  let exact = true;
  for (const [path, expected] of Object.entries(when)) {
    const found = lookupPath(value, path);
    if (!found.ok) return found;
    const m = matches(expected, found.value);
    if (m === "no") return { ok: true, match: false, exact: true };
    if (m === "loose") exact = false;
  }
  return { ok: true, match: true, exact };
}

/**
 * `matchWhen` on a request body as a server that also reads it under a wrapper key may: Rails'
 * `wrap_parameters` copies a JSON body's keys into `params[<resource>]`, and its controllers read
 * `params[:repository][:private]`, so `{"repository": {"private": false}}` says `private: false`
 * to them while the body's top level says nothing (JSON APIs built on nested-parameter parsers
 * read `{"job": {"dryRun": true}}` the same way). Every object-valued top-level key that holds a
 * key of the condition is such a reading, whatever its name (the wrapper is named after the
 * controller, which Bulkhead cannot know). When the readings disagree, or one is met only
 * loosely, the condition is met loosely: the caller judges the request with and without it, the
 * stricter wins.
 */
export function matchWhenBody(when: When | undefined, value: unknown): { ok: true; match: boolean; exact: boolean } | Rejection {
  const top = matchWhen(when, value);
  if (!top.ok || when === undefined || typeof value !== "object" || value === null || Array.isArray(value)) return top;
  const firstKeys = [...new Set(Object.keys(when).map((path) => path.split(".")[0] as string))];
  let match = top.match;
  let exact = top.exact;
  for (const inner of Object.values(value)) {
    if (typeof inner !== "object" || inner === null || Array.isArray(inner)) continue;
    // Only a wrapper that holds a key of the condition (or a variant of one, refused by matchWhen).
    if (!firstKeys.some((key) => { const found = property(inner, key); return !found.ok || found.value !== undefined; })) continue;
    const wrapped = matchWhen(when, inner);
    if (!wrapped.ok) return wrapped;
    if (wrapped.match !== top.match || !wrapped.exact) exact = false;
    if (wrapped.match) match = true;
  }
  return { ok: true, match, exact: match ? exact : true };
}
