/**
 * What a credential serves: one semantic service and the environments listed. The proxy injects
 * a credential only when every action of the request is an action of that service in one of
 * those environments, and lies inside the task's scope; otherwise the request goes without it
 * (docs/vault-and-api.md, "What a credential serves"). Pure.
 */
import { scopeAllows, type TaskScope } from "@/lib/identity/scope";
import type { ServiceRegistry } from "@/lib/semantics/registry";
import type { SemanticAction } from "@/lib/semantics/types";

export const ALL_ENVIRONMENTS = "*";
const ENVIRONMENT = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Canonical environments: sorted, lower-case, space-separated; "*" alone for every environment. */
export function canonicalEnvironments(value: string | readonly string[]): { ok: true; text: string } | { ok: false; message: string } {
  // A list's elements are names each, never split: ["staging eu"] is one name (refused below),
  // not "staging" and "eu" (it bound the credential to an environment nobody asked for).
  const names = (typeof value === "string" ? value.split(/[\s,]+/) : value.map((v) => v.trim())).map((n) => n.toLowerCase()).filter((n) => n !== "");
  if (names.length === 0) return { ok: false, message: "List the environments the credential serves (e.g. staging), or * for every environment of its service." };
  if (names.includes(ALL_ENVIRONMENTS)) {
    return names.every((n) => n === ALL_ENVIRONMENTS) ? { ok: true, text: ALL_ENVIRONMENTS } : { ok: false, message: "* already means every environment; list names or *, not both." };
  }
  const bad = names.find((n) => !ENVIRONMENT.test(n));
  if (bad !== undefined) return { ok: false, message: `"${bad.slice(0, 64)}" is not an environment name (letters, digits, ".", "_" and "-").` };
  return { ok: true, text: [...new Set(names)].sort().join(" ") };
}

/** The environments of a stored credential; none for an unbound one. */
export function environmentList(text: string): string[] {
  return text === "" ? [] : text.split(" ");
}

export interface Binding {
  /** null: unbound (from before bindings existed); never injected. */
  serviceId: string | null;
  environments: readonly string[];
}

/** Does the credential serve this action (its service, one of its environments)? */
export function serves(binding: Binding, action: Pick<SemanticAction, "service" | "environment">): boolean {
  if (binding.serviceId === null || binding.serviceId !== action.service) return false;
  return binding.environments.includes(ALL_ENVIRONMENTS) || binding.environments.includes(action.environment.toLowerCase());
}

export type Selection<C> = { credential: C; withheld: null } | { credential: null; withheld: string | null };

/**
 * Whether to inject the credential stored for the request's exact endpoint: only if it serves
 * every action, each inside the task's scope. Otherwise the request goes without it; `withheld`
 * says why (for the audit), and is null when nothing is stored.
 */
export function selectCredential<C extends Binding & { name: string }>(stored: C | undefined, actions: readonly SemanticAction[], scope: TaskScope): Selection<C> {
  if (!stored) return { credential: null, withheld: null };
  if (actions.length === 0) return { credential: null, withheld: "the request carries no actions" };
  if (!actions.every((a) => scopeAllows(scope, a))) return { credential: null, withheld: "an action lies outside the task's scope" };
  if (actions.every((a) => serves(stored, a))) return { credential: stored, withheld: null };
  const acts = [...new Set(actions.map((a) => `${a.service}/${a.environment}`))].join(", ");
  const offered = stored.serviceId ? `${stored.serviceId} in ${stored.environments.join(", ")}` : "nothing (unbound)";
  return { credential: null, withheld: `credential ${stored.name} serves ${offered}, not ${acts}` };
}

/**
 * The service a credential for this endpoint serves: the one its host belongs to (`unknown`
 * for hosts no service describes). A declared service must agree, and an endpoint the proxy
 * refuses (a service's host on another scheme or port) cannot have a credential.
 */
export function endpointService(registry: ServiceRegistry, scheme: "http" | "https", host: string, port: number, declared: string | undefined): { ok: true; serviceId: string } | { ok: false; message: string } {
  const match = registry.match(host, port, scheme);
  if (match.kind === "mismatch") return { ok: false, message: `${host} belongs to the service ${match.descriptor.id}, but ${match.reason}: the proxy refuses requests there, so a credential would never be used.` };
  const actual = match.kind === "service" ? match.descriptor.id : "unknown";
  if (declared !== undefined && declared !== actual) {
    return { ok: false, message: `${host} belongs to the service ${actual}, not ${declared}: a credential serves the service of its host.` };
  }
  return { ok: true, serviceId: actual };
}
