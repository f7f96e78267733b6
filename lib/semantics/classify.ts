/**
 * From one canonical request to its semantic actions. The service is found by host/port/scheme,
 * the protocol by path, the environment of each action by the inventory. Never throws: an
 * internal error becomes a rejection, so a bug can block a request but never let one through.
 */
import { defaultConfigs, type Protocol, type ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import { classifyGraphql } from "@/lib/semantics/graphql";
import { resolveEnvironment, type Inventory } from "@/lib/semantics/inventory";
import { classifyMcp } from "@/lib/semantics/mcp";
import type { ServiceMatch, ServiceRegistry } from "@/lib/semantics/registry";
import { classifyRest, effectiveMethods, unmatched } from "@/lib/semantics/rest";
import { classifySqlHttp } from "@/lib/semantics/sql-http";
import {
  maxEffectOf,
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

  const actions = result.drafts.map((draft) => toAction(draft, descriptor.id, req.host, inventory, descriptor.environment));
  return { ok: true, service: descriptor.id, actions, effect: maxEffectOf(actions.map((a) => a.effect)) };
}

/** A host no service claims: classified by method only, and always production. */
function unknownService(req: CanonicalRequest): Classification {
  const methods = effectiveMethods(req);
  if (!Array.isArray(methods)) return methods;
  const actions: SemanticAction[] = methods.map((method) => {
    const draft = unmatched(method, req.path, `${req.host}${req.path}`);
    return { service: UNKNOWN_SERVICE, environment: UNKNOWN_ENVIRONMENT, resource: draft.resource, operation: draft.operation, effect: draft.effect, detail: { ...draft.detail, host: req.host } };
  });
  return { ok: true, service: UNKNOWN_SERVICE, actions, effect: maxEffectOf(actions.map((a) => a.effect)) };
}

const CONFIG_KEY = { graphql: "graphql", "sql-http": "sql", mcp: "mcp" } as const;

/** Another protocol's `paths` claim the path first; otherwise the service's own protocol applies. */
export function selectProtocol(d: ServiceDescriptor, path: string): Protocol | Rejection {
  for (const protocol of ["graphql", "sql-http", "mcp"] as const) {
    const paths = d[CONFIG_KEY[protocol]]?.paths;
    if (protocol !== d.protocol && paths?.includes(path)) return protocol;
  }
  if (d.protocol !== "rest") {
    const paths = d[CONFIG_KEY[d.protocol]]?.paths;
    if (paths && !paths.includes(path)) {
      return reject("unknown_endpoint", `${path} is not a ${d.protocol} endpoint of service ${d.id}`);
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

function toAction(draft: ActionDraft, service: string, host: string, inventory: Inventory, fixed: string | undefined): SemanticAction {
  const environment = resolveEnvironment(inventory, { service, host, keys: draft.keys, fixed });
  const action: SemanticAction = { service, environment, resource: draft.resource, operation: draft.operation, effect: draft.effect };
  if (draft.detail) action.detail = draft.detail;
  return action;
}
