/**
 * The semantic actions as a decision event keeps them: everything an operator needs to answer
 * "what did this request do, and why was it allowed or refused", without repeating what the
 * event already says. A REST route's parameters follow from its route and the request path (and
 * name the resource), and the method and path are the request's own, so those are dropped
 * unless they differ; GraphQL arguments, SQL statements and MCP tool arguments stay.
 */
import type { SemanticAction } from "@/lib/semantics/types";

export function compactActions(actions: readonly SemanticAction[], request: { method: string; path: string; host: string }): Array<Record<string, unknown>> {
  return actions.map((a) => {
    const out: Record<string, unknown> = { service: a.service, environment: a.environment, resource: a.resource, operation: a.operation, effect: a.effect };
    if (!a.detail) return out;
    const detail: Record<string, unknown> = {};
    for (const key of Object.keys(a.detail)) {
      const value = a.detail[key];
      if (key === "method" && value === request.method) continue;
      if (key === "path" && value === request.path) continue;
      if (key === "host" && value === request.host) continue;
      if (key === "params" && typeof a.detail.route === "string") continue;
      detail[key] = value;
    }
    if (Object.keys(detail).length > 0) out.detail = detail;
    return out;
  });
}
