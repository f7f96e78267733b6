/**
 * `when` conditions in descriptors: "this route/field is more dangerous if the body says so"
 * (GitHub `force: true`, Railway `replace: true`). Comparison is lenient on purpose, because an
 * escalation that a loosely-typed server would still honour must not be dodged by spelling
 * `true` as `"true"` or `1`.
 */
import type { When } from "@/lib/semantics/descriptors/schema";

/** Reads a dotted path ("input.force") from nested plain objects; undefined when absent. */
export function getPath(value: unknown, path: string): unknown {
  let current: unknown = value;
  for (const key of path.split(".")) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function truthy(value: unknown): boolean | undefined {
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "string") {
    const v = value.trim().toLowerCase();
    if (v === "true" || v === "1" || v === "yes" || v === "on") return true;
    if (v === "false" || v === "0" || v === "no" || v === "off" || v === "") return false;
  }
  return undefined;
}

function matches(expected: string | number | boolean | null, actual: unknown): boolean {
  if (expected === null) return actual === null;
  if (typeof expected === "boolean") {
    // Any value a server could read as the expected boolean counts; unknown shapes count for `true`.
    const t = truthy(actual);
    if (t === undefined) return expected === true && actual !== undefined && actual !== null;
    return t === expected;
  }
  if (typeof expected === "number") return actual !== null && actual !== "" && Number(actual) === expected;
  return typeof actual === "string" && actual.toLowerCase() === expected.toLowerCase();
}

export function matchWhen(when: When | undefined, value: unknown): boolean {
  if (when === undefined) return true;
  for (const [path, expected] of Object.entries(when)) {
    if (!matches(expected, getPath(value, path))) return false;
  }
  return true;
}
