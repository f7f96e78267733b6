/**
 * Task scope: the bound layer 1 puts on a task, independent of its policy. A scope is a set of
 * entries `service:environment:effect`; an action lies inside the scope when one entry names its
 * service (or `*`), its environment (or `*`, or a glob matching it) and an effect at least as high
 * as the action's (read < write < destructive < irreversible). The scope is fixed when the task is
 * created, carried as the `scope` claim of every task token, and checked by the proxy before any
 * policy is consulted (docs/identity.md, "Task scope").
 *
 * Grammar (case-insensitive; stored lower-case, in one canonical spelling):
 *   scope       = "none" | entry *(sep entry)          ; "none": the task may touch nothing
 *   sep         = 1*("," | SP | HTAB | LF | CR)
 *   entry       = service ":" environment ":" effect
 *   service     = "*" | [a-z0-9][a-z0-9_-]{0,63}        ; "unknown" = hosts no service describes
 *   environment = "*" | 1*64([a-z0-9._-] | "*" | "?")   ; "*"/"?" are globs, as in policies
 *   effect      = "read" | "write" | "destructive" | "irreversible"   ; the highest one allowed
 * There is no shorthand for "everything": it has to be written `*:*:irreversible`.
 */
import { compileGlobs, globMatch, isGlob, type Matcher } from "@/lib/semantics/glob";
import { EFFECTS, effectRank, isEffect, type Effect } from "@/lib/semantics/types";

export interface ScopeEntry {
  readonly service: string;
  readonly environment: string;
  /** The highest effect this entry allows. */
  readonly effect: Effect;
}

export interface TaskScope {
  /** Canonical text: entries sorted, lower-case, space-separated; "" for none. This is the claim. */
  readonly text: string;
  readonly entries: readonly ScopeEntry[];
  /** Compiled entries (environment matcher null = any). */
  readonly compiled: readonly { service: string; environment: Matcher | null; rank: number }[];
}

export type ParseScopeResult = { ok: true; scope: TaskScope } | { ok: false; errors: string[] };

/** The few facts of an action the scope judges. */
export interface ScopedAction {
  service: string;
  environment: string;
  effect: Effect;
}

export const MAX_SCOPE_ENTRIES = 32;
/** Bounds the claim, so a token stays well under the verifier's 4 KiB limit. */
export const MAX_SCOPE_TEXT = 1024;
const MAX_INPUT = 8192;
const SERVICE = /^(?:\*|[a-z0-9][a-z0-9_-]{0,63})$/;
const ENVIRONMENT = /^[a-z0-9._*?-]{1,64}$/;
const SEPARATORS = /[\s,]+/;

function compile(entries: readonly ScopeEntry[]): TaskScope {
  const compiled = entries.map((e) => ({
    service: e.service,
    environment: e.environment === "*" ? null : compileGlobs([e.environment], { caseInsensitive: true }),
    rank: effectRank(e.effect),
  }));
  const text = entries.map((e) => `${e.service}:${e.environment}:${e.effect}`).join(" ");
  return Object.freeze({ text, entries: Object.freeze(entries.map((e) => Object.freeze({ ...e }))), compiled: Object.freeze(compiled) });
}

/** The scope that allows nothing. */
export const NO_SCOPE: TaskScope = compile([]);

/** Does environment pattern `outer` cover everything pattern `inner` can match? (Conservative for two globs.) */
function environmentCovers(outer: string, inner: string): boolean {
  if (outer === "*" || outer === inner) return true;
  return !isGlob(inner) && isGlob(outer) && globMatch(outer, inner);
}

/** True when entry `outer` allows everything entry `inner` allows. */
export function entryCovers(outer: ScopeEntry, inner: ScopeEntry): boolean {
  return (
    (outer.service === "*" || outer.service === inner.service) &&
    environmentCovers(outer.environment, inner.environment) &&
    effectRank(outer.effect) >= effectRank(inner.effect)
  );
}

/** Sorted, deduplicated, and without entries another entry already covers: one spelling per scope. */
export function canonicalEntries(entries: readonly ScopeEntry[]): ScopeEntry[] {
  const kept: ScopeEntry[] = [];
  entries.forEach((entry, i) => {
    const covered = entries.some((other, j) => j !== i && entryCovers(other, entry) && (!entryCovers(entry, other) || j < i));
    if (!covered) kept.push(entry);
  });
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return kept.sort((a, b) => order(a.service, b.service) || order(a.environment, b.environment) || effectRank(a.effect) - effectRank(b.effect));
}

function parseEntry(raw: string): ScopeEntry | string {
  const parts = raw.split(":");
  if (parts.length !== 3) return `"${raw}" is not service:environment:effect (e.g. railway:staging:read)`;
  const [service, environment, effect] = parts as [string, string, string];
  if (!SERVICE.test(service)) return `"${raw}": the service must be "*" or a service id (lower-case letters, digits, "-" and "_")`;
  if (!ENVIRONMENT.test(environment)) return `"${raw}": the environment must be "*" or a name of letters, digits, ".", "_", "-" (with "*" or "?" as wildcards)`;
  if (!isEffect(effect)) return `"${raw}": the effect must be one of ${EFFECTS.join(", ")} (the highest one the task may cause)`;
  return { service, environment, effect };
}

/**
 * Parses a scope from text (entries separated by spaces or commas) or a list of entries. Errors
 * are sentences naming the entry; nothing is guessed.
 */
export function parseScope(input: string | readonly string[]): ParseScopeResult {
  const text = typeof input === "string" ? input : input.join(" ");
  if (typeof text !== "string" || text.length > MAX_INPUT) return { ok: false, errors: ["The scope is too long."] };
  const tokens = text.toLowerCase().split(SEPARATORS).filter((t) => t !== "");
  if (tokens.length === 0) return { ok: false, errors: ['The scope is empty: list entries such as railway:staging:read, or write "none".'] };
  if (tokens.length === 1 && tokens[0] === "none") return { ok: true, scope: NO_SCOPE };
  if (tokens.includes("none")) return { ok: false, errors: ['"none" cannot be combined with other entries.'] };
  if (tokens.length > MAX_SCOPE_ENTRIES) return { ok: false, errors: [`A scope has at most ${MAX_SCOPE_ENTRIES} entries.`] };
  const errors: string[] = [];
  const entries: ScopeEntry[] = [];
  for (const token of tokens) {
    const entry = parseEntry(token);
    if (typeof entry === "string") errors.push(entry);
    else entries.push(entry);
  }
  if (errors.length > 0) return { ok: false, errors };
  const scope = compile(canonicalEntries(entries));
  if (scope.text.length > MAX_SCOPE_TEXT) return { ok: false, errors: [`The scope is longer than ${MAX_SCOPE_TEXT} characters.`] };
  return { ok: true, scope };
}

/** Builds a scope from entries (e.g. derived from a policy); null when they do not fit the grammar or limits. */
export function scopeFromEntries(entries: readonly ScopeEntry[]): TaskScope | null {
  if (entries.length === 0) return NO_SCOPE;
  const parsed = parseScope(entries.map((e) => `${e.service}:${e.environment}:${e.effect}`));
  return parsed.ok ? parsed.scope : null;
}

/**
 * A stored or claimed scope: only the canonical spelling is accepted, so one scope has one text
 * and a claim can be compared with its task by meaning, never by a lenient re-reading.
 */
export function parseCanonicalScope(text: unknown): TaskScope | null {
  if (typeof text !== "string" || text.length > MAX_SCOPE_TEXT) return null;
  if (text === "") return NO_SCOPE;
  const parsed = parseScope(text);
  return parsed.ok && parsed.scope.text === text ? parsed.scope : null;
}

/** Is the action inside the scope? Unknown services and environments are inside only where an entry names them or says `*`. */
export function scopeAllows(scope: TaskScope, action: ScopedAction): boolean {
  const rank = effectRank(action.effect);
  for (const entry of scope.compiled) {
    if (entry.rank < rank) continue;
    if (entry.service !== "*" && entry.service !== action.service) continue;
    if (entry.environment === null || entry.environment(action.environment)) return true;
  }
  return false;
}

/** The first action outside the scope, or null when every one lies inside. */
export function firstOutsideScope<A extends ScopedAction>(scope: TaskScope, actions: readonly A[]): A | null {
  for (const action of actions) if (!scopeAllows(scope, action)) return action;
  return null;
}

/** Is every entry of `inner` covered by `outer`? (A token's claim must lie within its task's scope.) */
export function scopeWithin(inner: TaskScope, outer: TaskScope): boolean {
  if (inner.text === outer.text) return true;
  return inner.entries.every((entry) => outer.entries.some((o) => entryCovers(o, entry)));
}

/** For people: "railway:staging:read" or "none". */
export function describeScope(scope: TaskScope): string {
  return scope.text === "" ? "none" : scope.text;
}

/** Does the scope allow every service, environment and effect? */
export function isUnrestricted(scope: TaskScope): boolean {
  return scope.entries.some((e) => e.service === "*" && e.environment === "*" && e.effect === "irreversible");
}
