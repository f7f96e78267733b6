/**
 * The semantic action model: what an outbound request *does*, independent of how it is spelled.
 * Every layer above (policy, approvals, audit) reasons about these types only.
 */

/** How much a request changes the world, from harmless to beyond repair. */
export type Effect = "read" | "write" | "destructive" | "irreversible";

/** All effects, lowest first. */
export const EFFECTS: readonly Effect[] = ["read", "write", "destructive", "irreversible"];

const RANK: Record<Effect, number> = { read: 0, write: 1, destructive: 2, irreversible: 3 };

/** 0 for read … 3 for irreversible. */
export function effectRank(effect: Effect): number {
  return RANK[effect];
}

/** The more severe of two effects. */
export function maxEffect(a: Effect, b: Effect): Effect {
  return RANK[a] >= RANK[b] ? a : b;
}

/** The most severe effect in a list; `read` for an empty list. */
export function maxEffectOf(effects: Iterable<Effect>): Effect {
  let max: Effect = "read";
  for (const effect of effects) max = maxEffect(max, effect);
  return max;
}

export function isEffect(value: unknown): value is Effect {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(RANK, value);
}

/**
 * One request in canonical form. It is both what gets evaluated and what gets forwarded, so
 * nothing downstream may re-parse the original URL.
 */
export interface CanonicalRequest {
  /** Upper-case HTTP method token. */
  method: string;
  scheme: "http" | "https";
  /** Lower-case, punycode, no trailing dot; IPv6 literals keep their brackets. */
  host: string;
  port: number;
  /** Canonical path: see `canonical.ts` for the exact rules. */
  path: string;
  /** Raw query without the leading "?" (non-ASCII bytes percent-encoded). */
  query: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body?: Uint8Array;
}

/** One thing a request asks a service to do. A request may carry several. */
export interface SemanticAction {
  service: string;
  environment: string;
  /** The object acted on (an ID, `owner/repo`, a table); "-" when the operation names none. */
  resource: string;
  /** Service-specific operation name (`volumeDelete`, `repos.delete`, `DROP TABLE`, a tool name). */
  operation: string;
  effect: Effect;
  /**
   * The service names resources without regard to case (a REST descriptor's `caseInsensitive`,
   * GitHub's): allow and hold rules then match its resource in any case, as deny rules always do.
   * Elsewhere `Kx9Prod` and `kx9prod` may be two resources, and an allow rule names one.
   */
  caseInsensitive?: true;
  /** Extra facts for people and audit (arguments, statement index, notes). Never used to decide. */
  detail?: Record<string, unknown>;
}

/** Malformed or ambiguous input: rejected with a reason, never guessed. */
export interface Rejection {
  ok: false;
  /** Stable machine-readable code, e.g. `dot_segment`, `graphql_ambiguous_operation`. */
  code: string;
  reason: string;
}

export type Classification =
  /** `protocol`: how the request was read (absent for a host no service claims). */
  | { ok: true; service: string; actions: SemanticAction[]; effect: Effect; protocol?: "rest" | "graphql" | "sql-http" | "mcp" }
  | Rejection;

export function reject(code: string, reason: string): Rejection {
  return { ok: false, code, reason };
}

/** The resource placeholder for operations that act on nothing nameable. */
export const NO_RESOURCE = "-";

/**
 * The most actions one request may carry: what one audit event records whole
 * (proxy-worker/audit/compact.ts, which refuses more, recording how many and which).
 */
export const MAX_ACTIONS = 2_000;

/**
 * Beyond this many the classifier refuses a request before any per-action work (its resources'
 * twins, the inventory, the event's record of them): 125,000 ids in a 1 MB GraphQL list.
 */
export const MAX_CLASSIFIED_ACTIONS = 10 * MAX_ACTIONS;

/** The environment of anything the inventory does not know. */
export const UNKNOWN_ENVIRONMENT = "production";

/**
 * What a protocol classifier produces before the environment is resolved: the action minus
 * service/environment, plus the identifiers to look up in the inventory.
 */
export interface ActionDraft {
  resource: string;
  operation: string;
  effect: Effect;
  detail?: Record<string, unknown>;
  /** Identifiers (IDs, repo names, database names) whose environment the inventory may know. */
  keys: string[];
}

export type DraftResult = { ok: true; drafts: ActionDraft[] } | Rejection;
