/**
 * The semantic actions as a decision event keeps them: everything an operator needs to answer
 * "what did this request do, and why was it allowed or refused", without repeating what the
 * event already says. A REST route's parameters follow from its route and the request path (and
 * name the resource), and the method and path are the request's own, so those are dropped
 * unless they differ; GraphQL arguments, SQL statements and MCP tool arguments stay.
 */
import { MAX_ACTIONS, type SemanticAction } from "@/lib/semantics/types";

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

/**
 * How many actions one decision event records whole, and how many bytes their essentials
 * (service, environment, resource, operation, effect) may take: a forwarded request's event
 * holds every one of its actions (docs/audit.md), so a request with more is refused before it is
 * decided, as SQL with more than 2,000 actions already is. The bytes leave 16 KiB of an event's
 * 256 KiB for the rest of its data.
 */
export const MAX_RECORDED_ACTIONS = MAX_ACTIONS;
export const MAX_RECORDED_ACTION_BYTES = 240 * 1024;
/** What a recorded action's keys and punctuation take besides its values (`{"service":"",…},`). */
const ACTION_OVERHEAD_BYTES = 73;

const ESSENTIAL_KEYS = ["service", "environment", "resource", "operation", "effect"] as const;

/** An action as the event keeps it when its details do not fit: what search and people read. */
export function essentialAction(action: unknown): unknown {
  if (typeof action !== "object" || action === null || Array.isArray(action)) return action;
  const a = action as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ESSENTIAL_KEYS) if (a[k] !== undefined) out[k] = a[k];
  return out;
}

/** Why these actions cannot all be recorded in one event, or null when they can. */
export function unrecordableActions(actions: readonly SemanticAction[]): string | null {
  if (actions.length > MAX_RECORDED_ACTIONS) {
    return `the request carries ${actions.length} actions, more than the ${MAX_RECORDED_ACTIONS} Bulkhead records in one audit event; send fewer per request`;
  }
  let chars = 0;
  for (const a of actions) chars += a.service.length + a.environment.length + a.resource.length + a.operation.length + a.effect.length;
  // A UTF-16 unit is at most six bytes of the JSON text (a control character's escape); else measured.
  if (chars * 6 + actions.length * ACTION_OVERHEAD_BYTES <= MAX_RECORDED_ACTION_BYTES) return null;
  let bytes = 0;
  for (const a of actions) bytes += Buffer.byteLength(JSON.stringify(essentialAction(a))) + 1;
  if (bytes <= MAX_RECORDED_ACTION_BYTES) return null;
  return `the request's ${actions.length} actions name ${Math.ceil(bytes / 1024)} KiB of resources and operations, more than Bulkhead records in one audit event (${MAX_RECORDED_ACTION_BYTES / 1024} KiB); send fewer per request`;
}
