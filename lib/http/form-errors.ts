import type { z } from "zod";

/**
 * Sentences for form fields instead of zod's validation output ("Invalid input: expected
 * string, received undefined"). Used as the per-parse error map of every form, so a schema's
 * own messages (written as sentences) still win and only zod's defaults are replaced; and as a
 * last resort for errors raised deeper down, which no longer carry the input.
 */
type RawIssue = z.core.$ZodRawIssue;

function plural(n: number | bigint, word: string): string {
  return `${n} ${word}${n === 1 || n === 1n ? "" : "s"}`;
}

function sentence(issue: Pick<RawIssue, "code"> & Record<string, unknown>, hasInput: boolean): string {
  switch (issue.code) {
    case "invalid_type": {
      if (hasInput && (issue.input === undefined || issue.input === null)) return "This field is required.";
      const expected = String(issue.expected);
      if (expected === "number" || expected === "int" || expected === "bigint") return "Enter a number.";
      if (expected === "string") return "Enter text.";
      if (expected === "boolean") return "Choose yes or no.";
      return "This value is not valid.";
    }
    case "too_small": {
      const min = issue.minimum as number | bigint;
      if (issue.origin === "string") return Number(min) <= 1 ? "This field is required." : `Use at least ${plural(min, "character")}.`;
      if (issue.origin === "array" || issue.origin === "set") return `Choose at least ${min}.`;
      return issue.inclusive === false ? `Enter a number greater than ${min}.` : `Enter ${min} or more.`;
    }
    case "too_big": {
      const max = issue.maximum as number | bigint;
      if (issue.origin === "string") return `Use at most ${plural(max, "character")}.`;
      if (issue.origin === "array" || issue.origin === "set") return `Choose at most ${max}.`;
      return issue.inclusive === false ? `Enter a number less than ${max}.` : `Enter ${max} or less.`;
    }
    case "invalid_format":
      switch (issue.format) {
        case "email":
          return "Enter a valid email address.";
        case "url":
          return "Enter a valid URL, such as https://example.com.";
        case "uuid":
        case "guid":
          return "This is not a valid id.";
        case "datetime":
          return "Enter a date and time such as 2026-12-31T12:00:00Z.";
        default:
          return "This value is not in the expected format.";
      }
    case "not_multiple_of":
      return `Enter a multiple of ${String(issue.divisor)}.`;
    case "invalid_value": {
      const values = Array.isArray(issue.values) ? issue.values.map(String) : [];
      return values.length > 0 ? `Choose one of: ${values.join(", ")}.` : "This value is not allowed.";
    }
    case "unrecognized_keys":
      return `Remove the unexpected field${Array.isArray(issue.keys) && issue.keys.length === 1 ? "" : "s"}: ${Array.isArray(issue.keys) ? issue.keys.join(", ") : ""}.`;
    default:
      return "This value is not valid.";
  }
}

/** The error map forms parse with: a sentence for each of zod's own issues. */
export const formErrorMap: z.core.$ZodErrorMap = (issue) => sentence(issue as never, true);

// zod's English defaults start like this; a schema's own message never does.
const ZOD_DEFAULT = /^(Invalid input|Invalid option|Invalid string|Invalid (email|URL|UUID|GUID|ISO|date|number)|Too (small|big)|Unrecognized key|Expected |Required$)/;

/** A form-ready message for an issue that was already raised (its input is gone). */
export function issueSentence(issue: z.core.$ZodIssue): string {
  if (!ZOD_DEFAULT.test(issue.message)) return issue.message;
  // The default message still says what arrived, which tells "missing" from "wrong".
  if (issue.code === "invalid_type" && /received (undefined|null)$/.test(issue.message)) return "This field is required.";
  return sentence(issue as never, false);
}

/** Field errors keyed by the field's path ("form" for the whole input). */
export function fieldErrorsOf(error: z.ZodError): Record<string, string[]> {
  const fieldErrors: Record<string, string[]> = {};
  for (const issue of error.issues) {
    const key = issue.path.join(".") || "form";
    (fieldErrors[key] ??= []).push(issueSentence(issue));
  }
  return fieldErrors;
}

const JSON_KIND: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  array: "an array",
  object: "an object",
  date: "a date",
  bigint: "a whole number",
};

/**
 * An issue as an API client or a command line reads it: a schema's own message as written, and
 * for zod's defaults ("Invalid input: expected boolean, received string", a union's bare "Invalid
 * input") what the value must be, in JSON's words. `path` is said by the caller.
 */
export function apiIssueSentence(issue: z.core.$ZodIssue): string {
  if (!ZOD_DEFAULT.test(issue.message)) return issue.message;
  if (issue.code === "invalid_type") {
    const received = /received (\w+)$/.exec(issue.message)?.[1];
    if (received === "undefined") return "is required";
    const kind = JSON_KIND[String(issue.expected)] ?? String(issue.expected);
    if (received === "number" && (issue.expected === "int" || issue.expected === "bigint")) return `must be ${kind}`;
    return received ? `must be ${kind}, not ${received === "null" ? "null" : (JSON_KIND[received] ?? received)}` : `must be ${kind}`;
  }
  if (issue.code === "invalid_union" && issue.errors.length > 0) {
    // Each form the value may take, with what is wrong for that form.
    const forms = issue.errors.map((branch) =>
      branch.map((inner) => `${inner.path.length > 0 ? `item ${inner.path.map(String).join(".")} ` : ""}${apiIssueSentence(inner)}`).join(", "),
    );
    return `matches none of its forms: ${forms.join("; or ")}`;
  }
  return issueSentence(issue);
}

/**
 * The issues without a looser bound beside a tighter one on the same value: a port of 10^23 broke
 * both `int()`'s safe-integer bound and the schema's 65535, and was told "Enter
 * 9007199254740991 or less." and "Enter 65535 or less.", which read as a contradiction.
 */
export function withoutLooserBounds(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const key = (issue: z.core.$ZodIssue) => `${issue.code}\u0000${issue.path.map(String).join("\u0000")}`;
  const bound = (issue: z.core.$ZodIssue): number | null => {
    const value = issue.code === "too_big" ? issue.maximum : issue.code === "too_small" ? issue.minimum : null;
    return typeof value === "number" || typeof value === "bigint" ? Number(value) : null;
  };
  const tightest = new Map<string, number>();
  for (const issue of issues) {
    const b = bound(issue);
    if (b === null) continue;
    const k = key(issue);
    const known = tightest.get(k);
    if (known === undefined || (issue.code === "too_big" ? b < known : b > known)) tightest.set(k, b);
  }
  return issues.filter((issue) => {
    const b = bound(issue);
    return b === null || tightest.get(key(issue)) === b;
  });
}

/** A ZodError's issues for an API answer: messages as apiIssueSentence says them, each said once. */
export function apiIssues(error: z.ZodError): Array<{ path: string; message: string }> {
  const seen = new Set<string>();
  const issues: Array<{ path: string; message: string }> = [];
  for (const issue of withoutLooserBounds(error.issues)) {
    const entry = { path: issue.path.map(String).join("."), message: apiIssueSentence(issue) };
    const key = `${entry.path}\u0000${entry.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(entry);
  }
  return issues;
}
