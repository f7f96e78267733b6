/**
 * From one canonical request to its semantic actions. The service is found by host/port/scheme,
 * the protocol by path, the environment of each action by the inventory. Never throws: an
 * internal error becomes a rejection, so a bug can block a request but never let one through.
 */
import { defaultConfigs, type Protocol, type ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import { classifyGraphql } from "@/lib/semantics/graphql";
import { resolveEnvironment, type Inventory } from "@/lib/semantics/inventory";
import { classifyMcp } from "@/lib/semantics/mcp";
import { foldedPathSet, pathKey } from "@/lib/semantics/path-fold";
import type { ServiceMatch, ServiceRegistry } from "@/lib/semantics/registry";
import { classifyRest, effectiveMethods, unmatchedBoth } from "@/lib/semantics/rest";
import { classifySqlHttp } from "@/lib/semantics/sql-http";
import {
  effectRank,
  MAX_CLASSIFIED_ACTIONS,
  maxEffectOf,
  NO_RESOURCE,
  reject,
  UNKNOWN_ENVIRONMENT,
  type ActionDraft,
  type CanonicalRequest,
  type Classification,
  type DraftResult,
  type Rejection,
  type SemanticAction,
} from "@/lib/semantics/types";

export const UNKNOWN_SERVICE = "unknown";

const DESTRUCTIVE_RANK = effectRank("destructive");

export function classify(request: CanonicalRequest, registry: ServiceRegistry, inventory: Inventory): Classification {
  return classifyMatched(request, registry.match(request.host, request.port, request.scheme), inventory);
}

/**
 * The same, for a caller that has already matched the request to the registry (the proxy matches
 * once per request and uses the same match for the destination check).
 */
export function classifyMatched(request: CanonicalRequest, match: ServiceMatch, inventory: Inventory): Classification {
  try {
    return classifyUnsafe(request, match, inventory);
  } catch {
    return reject("internal_error", "request could not be classified");
  }
}

function classifyUnsafe(req: CanonicalRequest, match: ServiceMatch, inventory: Inventory): Classification {
  if (match.kind === "mismatch") return reject("service_endpoint_mismatch", match.reason);
  if (match.kind === "none") return unknownService(req);

  const descriptor = match.descriptor;
  const protocol = selectProtocol(descriptor, req.path);
  if (typeof protocol !== "string") return protocol;
  const result = runClassifier(protocol, req, descriptor);
  if (!result.ok) return result;
  if (result.drafts.length === 0) return reject("no_actions", "request carries no operation");
  // Refused before any per-action work: a request with more actions than an audit event records
  // is refused anyway (proxy-worker/audit/compact.ts, which records what it refused), and far
  // more must not cost the worker time first (125,000 ids in one GraphQL list are a 1 MB body).
  if (result.drafts.length > MAX_CLASSIFIED_ACTIONS) {
    return reject("too_many_actions", `the request carries ${result.drafts.length} actions, far more than the 2,000 Bulkhead judges and records in one request; send fewer per request`);
  }

  // Where the request names the resource acted on, that resource must itself be known to the
  // inventory (inventory.ts, `resource`); a SQL request's database and host are its place, as
  // the connection goes there, so its keys vouch as they are.
  const named = protocol !== "sql-http";
  const foldsCase = protocol === "rest" && descriptor.rest?.caseInsensitive === true;
  const actions = withTrimmed(result.drafts).map((draft) => toAction(draft, descriptor.id, req.host, inventory, descriptor.environment, named, foldsCase));
  return { ok: true, service: descriptor.id, actions, effect: maxEffectOf(actions.map((a) => a.effect)), protocol };
}

/** A host no service claims: classified by method only, and always production. */
function unknownService(req: CanonicalRequest): Classification {
  const methods = effectiveMethods(req);
  if (!Array.isArray(methods)) return methods;
  const actions: SemanticAction[] = methods.flatMap((method) =>
    unmatchedBoth(method, req.path, (path) => `${req.host}${path}`).map((draft) => ({
      service: UNKNOWN_SERVICE,
      environment: UNKNOWN_ENVIRONMENT,
      resource: draft.resource,
      operation: draft.operation,
      effect: draft.effect,
      detail: { ...draft.detail, host: req.host },
    })),
  );
  return { ok: true, service: UNKNOWN_SERVICE, actions, effect: maxEffectOf(actions.map((a) => a.effect)) };
}

const CONFIG_KEY = { graphql: "graphql", "sql-http": "sql", mcp: "mcp" } as const;
const OTHER_PROTOCOLS = ["graphql", "sql-http", "mcp"] as const;

/**
 * Another protocol's `paths` claim the path first; otherwise the service's own protocol applies.
 * Paths are claimed exactly. A spelling that a folding server routes to a declared endpoint
 * (`/GraphQL`, `/graphql/`, `/graphql;v=1`: see `path-fold.ts`) but that is not the declared
 * spelling is refused (`endpoint_path_variant`), on either side: on a REST service it could be
 * the GraphQL endpoint (whose mutation a REST reading would call a plain write) or a REST path,
 * and on a GraphQL/SQL/MCP service it could be the endpoint or nothing Bulkhead knows. Neither
 * reading can be chosen safely and the declared spelling always works, so the agent is told it.
 */
export function selectProtocol(d: ServiceDescriptor, path: string): Protocol | Rejection {
  let key: string | null = null;
  const variantOf = (protocol: Protocol, paths: readonly string[]): Rejection | null => {
    key ??= pathKey(path);
    if (!foldedPathSet(paths).has(key)) return null;
    const declared = paths.find((p) => pathKey(p) === key) ?? paths[0];
    return reject(
      "endpoint_path_variant",
      `${path} is a spelling (case, trailing slash or ;parameters) of the ${protocol} endpoint ${declared} of service ${d.id}: servers differ on whether it is that endpoint, so it is refused; send the request to ${declared} exactly`,
    );
  };
  const claimed = (protocol: (typeof OTHER_PROTOCOLS)[number]) => (protocol === d.protocol ? undefined : d[CONFIG_KEY[protocol]]?.paths);
  for (const protocol of OTHER_PROTOCOLS) if (claimed(protocol)?.includes(path)) return protocol;
  for (const protocol of OTHER_PROTOCOLS) {
    const paths = claimed(protocol);
    const variant = paths ? variantOf(protocol, paths) : null;
    if (variant) return variant;
  }
  if (d.protocol !== "rest") {
    const paths = d[CONFIG_KEY[d.protocol]]?.paths;
    if (paths && !paths.includes(path)) {
      return variantOf(d.protocol, paths) ?? reject("unknown_endpoint", `${path} is not a ${d.protocol} endpoint of service ${d.id}`);
    }
  }
  return d.protocol;
}

function runClassifier(protocol: Protocol, req: CanonicalRequest, d: ServiceDescriptor): DraftResult {
  switch (protocol) {
    case "rest":
      return classifyRest(req, d.rest ?? defaultConfigs.rest());
    case "graphql":
      return classifyGraphql(req, d.graphql ?? defaultConfigs.graphql());
    case "sql-http":
      return classifySqlHttp(req, d.sql ?? defaultConfigs.sql());
    case "mcp":
      return classifyMcp(req, d.mcp ?? defaultConfigs.mcp());
  }
}

/** Whitespace (Unicode's, as JavaScript, Python and Go trim it) and NULs at either end. */
const PADDING = /^[\s\0]+|[\s\0]+$/g;

/** The name with each `/`-separated part trimmed (`" acme/ app\t"` is `acme/app`); null when that is the name, or nothing is left. */
/** Whitespace or a NUL at either end of the name or of one of its `/`-separated parts. */
const PADDED = /(?:^|\/)[\s\0]|[\s\0](?:$|\/)/;

export function trimmedResource(name: string): string | null {
  // Most names are not padded: one test, nothing allocated (this runs for every key of every action).
  if (!PADDED.test(name)) return null;
  const trimmed = name
    .split("/")
    .map((part) => part.replace(PADDING, ""))
    .join("/");
  return trimmed === name || trimmed.replace(/\//g, "") === "" ? null : trimmed;
}

/**
 * Resources and identifiers padded with whitespace (`DELETE /volumes/%20prod-db`, `volumeId:
 * "vol_123\t"`, `"database": "payroll "`) are also judged trimmed: servers often trim what names
 * a resource (Rails' `strip`, Go's `TrimSpace`, a lookup that ignores trailing blanks), so a rule
 * or an inventory entry for `prod-db` must apply to the padded spelling too. Every identifier is
 * looked up in the inventory in both spellings, and an action whose resource is padded gets a
 * twin on the trimmed resource (a policy must allow both).
 */
function withTrimmed(drafts: readonly ActionDraft[]): ActionDraft[] {
  const out: ActionDraft[] = [];
  // Operation and resource of every action so far and to come (looked up once per padded
  // resource: a list was searched, quadratic in a request's many padded identifiers).
  let seen: Set<string> | null = null;
  for (const draft of drafts) {
    const extra = draft.keys.map(trimmedResource).filter((k): k is string => k !== null && !draft.keys.includes(k));
    const keys = extra.length > 0 ? [...draft.keys, ...new Set(extra)] : draft.keys;
    out.push(keys === draft.keys ? draft : { ...draft, keys });
    const resource = trimmedResource(draft.resource);
    if (resource === null) continue;
    seen ??= new Set(drafts.map((d) => `${d.operation}\u0000${d.resource}`));
    const id = `${draft.operation}\u0000${resource}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ ...draft, resource, keys: [resource, ...keys.filter((k) => k !== resource)], detail: { ...draft.detail, padded: draft.resource, note: "the resource without the whitespace around it, as a server that trims it reads it" } });
  }
  return out;
}

/**
 * Where the protocol names the resource an action acts on, only that resource (or the host) can
 * place it outside production (inventory.ts). A destructive or irreversible action that names
 * none (`deleteProduct(sku: …)`, `deleteAllProducts(exceptId: …)`, a bulk `DELETE /volumes`)
 * acts on something no identifier in it is known to be: the identifiers beside it (a
 * `shopId`, a project) may only disagree, never vouch, so it is production unless its host is
 * placed. A read or write without a resource of its own (a list, a creation under a project)
 * is still placed by its identifiers.
 */
function toAction(draft: ActionDraft, service: string, host: string, inventory: Inventory, fixed: string | undefined, named: boolean, foldsCase: boolean): SemanticAction {
  const own = draft.resource !== NO_RESOURCE;
  const trimmed = named && own ? trimmedResource(draft.resource) : null;
  const resource = !named ? undefined : own ? (trimmed === null ? [draft.resource] : [draft.resource, trimmed]) : effectRank(draft.effect) >= DESTRUCTIVE_RANK ? [] : undefined;
  const environment = resolveEnvironment(inventory, { service, host, keys: draft.keys, fixed, resource, caseInsensitive: foldsCase });
  const action: SemanticAction = { service, environment, resource: draft.resource, operation: draft.operation, effect: draft.effect };
  if (foldsCase) action.caseInsensitive = true;
  if (draft.detail) action.detail = draft.detail;
  return action;
}
