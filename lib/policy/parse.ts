/**
 * Parsing policy YAML into a validated `Policy`, with errors that say where: a path like
 * `rules[2].effects[0]`, the line in the file, and a message naming the rule. Never throws.
 */
import { LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { normalizePolicy, policySchema, type Policy } from "@/lib/policy/schema";
import { checkReferences, type PolicyContext } from "@/lib/policy/references";
import { closest } from "@/lib/policy/suggest";
import { keysAlikeAsData, yamlErrorMessage, yamlReadFailure } from "@/lib/semantics/yaml-read";

export interface PolicyError {
  /** e.g. "rules[2].effects[0]"; "" for the document itself. */
  path: string;
  /** 1-based line in the YAML text, when known. */
  line?: number;
  message: string;
}

export type ParsePolicyResult = { ok: true; policy: Policy } | { ok: false; errors: PolicyError[] };

const MAX_POLICY_BYTES = 1_000_000;
const RULE_KEYS = ["id", "description", "service", "environments", "resources", "operations", "effects", "decision", "waive_approval", "expires_at"];
const TOP_KEYS = ["mode", "unlisted", "rules"];

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

export interface ParseOptions {
  /**
   * Check that services, environments and operations the rules name exist in this registry and
   * inventory. Without it only the format is checked (use it for templates, never to save).
   */
  references?: PolicyContext;
}

export function parsePolicy(yamlText: string, options: ParseOptions = {}): ParsePolicyResult {
  try {
    return parse(yamlText, options);
  } catch (error) {
    return { ok: false, errors: [{ path: "", message: `policy could not be read: ${yamlReadFailure(error)}` }] };
  }
}

function parse(text: string, options: ParseOptions): ParsePolicyResult {
  if (typeof text !== "string") return { ok: false, errors: [{ path: "", message: "policy must be text" }] };
  if (text.length > MAX_POLICY_BYTES) return { ok: false, errors: [{ path: "", message: "policy is larger than 1 MB" }] };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => ({ path: "", line: lineCounter.linePos(e.pos[0]).line, message: yamlErrorMessage(e) })),
    };
  }
  // A tag the reader does not know was dropped with a warning, its value read as plain text.
  const unknownTags = doc.warnings.filter((w) => w.code === "TAG_RESOLVE_FAILED");
  if (unknownTags.length > 0) {
    return { ok: false, errors: unknownTags.map((w) => ({ path: "", line: lineCounter.linePos(w.pos[0]).line, message: `${yamlErrorMessage(w)}; write the value without a tag` })) };
  }
  const sameKeys = keysAlikeAsData(doc, lineCounter);
  if (sameKeys.length > 0) return { ok: false, errors: sameKeys.map((e) => ({ path: "", line: e.line, message: e.message })) };
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) {
    return { ok: false, errors: [{ path: "", line: 1, message: "policy is empty: expected a mapping with mode, unlisted and rules" }] };
  }
  const parsed = policySchema.safeParse(data);
  if (parsed.success) {
    const policy = normalizePolicy(parsed.data);
    if (!options.references) return { ok: true, policy };
    const missing = checkReferences(policy.rules, options.references);
    if (missing.length === 0) return { ok: true, policy };
    return { ok: false, errors: missing.map((e) => ({ path: formatPath(e.path), ...lineOf(doc, lineCounter, e.path), message: `${ruleLabel(data, e.path)}${e.message}` })) };
  }
  const errors = parsed.error.issues.flatMap((issue) => toErrors(issue, doc, lineCounter, data));
  errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return { ok: false, errors };
}

function toErrors(issue: z.core.$ZodIssue, doc: Document, lines: LineCounter, data: unknown): PolicyError[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  if (issue.code === "unrecognized_keys") {
    const known = path.length === 0 ? TOP_KEYS : RULE_KEYS;
    return issue.keys.map((key) => {
      const full = [...path, key];
      // YAML 1.1's merge key is not part of YAML 1.2, which policies are read as: it arrives as a key named "<<".
      if (key === "<<") {
        return { path: formatPath(full), ...lineOf(doc, lines, full), message: `${ruleLabel(data, path)}merge keys (<<: *anchor) are not supported: write the rule's keys out (an alias of a whole value, key: *anchor, works)` };
      }
      const hint = suggest(key, known);
      return {
        path: formatPath(full),
        ...lineOf(doc, lines, full),
        message: `${ruleLabel(data, path)}unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ""}`,
      };
    });
  }
  let message = issue.message;
  if (issue.code === "invalid_type") message = typeMessage(issue.expected, valueAt(data, path));
  if (issue.code === "invalid_value") {
    const received = valueAt(data, path);
    message = `${JSON.stringify(received)} is not allowed here: expected one of ${issue.values.map(String).join(", ")}`;
  }
  return [{ path: formatPath(path), ...lineOf(doc, lines, path), message: `${ruleLabel(data, path)}${message}` }];
}

const KIND: Record<string, string> = { string: "text", array: "a list", object: "a mapping", number: "a number", boolean: "true or false" };

/**
 * zod's "Invalid input: expected string, received undefined" in the policy's own words: a key
 * that is missing is required, a value of the wrong kind is named with the kind it should be.
 */
function typeMessage(expected: string, received: unknown): string {
  if (received === undefined) return "is required";
  const got =
    received === null
      ? "nothing (null)"
      : Array.isArray(received)
        ? "a list"
        : received instanceof Uint8Array
          ? "binary data"
          : received instanceof Date
            ? "a date"
            : typeof received === "object"
              ? "a mapping"
              : typeof received === "string"
                ? "text"
                : `${typeof received === "number" ? "the number" : "the value"} ${String(received)}`;
  return `must be ${KIND[expected] ?? expected}, not ${got}`;
}

/** Line of the deepest YAML node that exists along the path. */
function lineOf(doc: Document, lines: LineCounter, path: readonly (string | number)[]): { line?: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    // For a missing key this is the mapping that lacks it.
    if (range) return { line: lines.linePos(range[0]).line };
  }
  return {};
}

function valueAt(data: unknown, path: readonly (string | number)[]): unknown {
  let current = data;
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

/** `in rule "railway-read" (rules[2]): ` for errors inside a rule. */
function ruleLabel(data: unknown, path: readonly (string | number)[]): string {
  if (path[0] !== "rules" || typeof path[1] !== "number") return "";
  const id = valueAt(data, ["rules", path[1], "id"]);
  return typeof id === "string" ? `in rule "${id}": ` : `in rule ${path[1] + 1}: `;
}

function suggest(key: string, known: readonly string[]): string | null {
  return closest(key.toLowerCase(), known, 2);
}
