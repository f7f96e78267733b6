/**
 * Which names a task could ever reach: a name belongs to a service (or to no service: "unknown"),
 * and the task's policy can only let traffic through to a service that one of its allow or hold
 * rules names (or `*`), or when unlisted actions are held, or in report mode. Names outside that
 * are answered NXDOMAIN by the sandbox resolver without any upstream lookup, so DNS cannot carry
 * data out. A name that only a person's approval could reach (a hold rule, `unlisted: hold`) is
 * not looked up either (`held`): the lookup would carry the name out before anyone approved it.
 * Pure over the enforcement view.
 */
import type { CompiledPolicy } from "@/lib/policy/compiled";
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { ServiceMatch, ServiceRegistry } from "@/lib/semantics/registry";
import type { EnforcementState } from "../proxy/enforcement-state";

export interface ReachableName {
  descriptor: ServiceDescriptor | null;
  scheme: "http" | "https";
  port: number;
  /** Only a person's approval could let traffic through to this name: no allow rule, not report mode. */
  held: boolean;
}

/** The service that claims `name` on any scheme or port, or null. */
export function serviceFor(registry: ServiceRegistry, name: string): ServiceDescriptor | null {
  for (const [port, scheme] of [
    [443, "https"],
    [80, "http"],
  ] as const) {
    const m = registry.match(name, port, scheme);
    if (m.kind !== "none") return m.descriptor;
  }
  return null;
}

export function policyCouldReach(policy: CompiledPolicy, serviceId: string): boolean {
  if (policy.mode === "report" || policy.unlisted === "hold") return true;
  return policy.rules.some((r) => r.decision !== "deny" && (r.service === serviceId || r.service === "*") && (r.expiresAt === null || r.expiresAt > Date.now()));
}

/** True when some request to the service could be let through without a person (report mode, or an allow rule). */
export function policyCouldAllow(policy: CompiledPolicy, serviceId: string, now = Date.now()): boolean {
  if (policy.mode === "report") return true;
  return policy.rules.some((r) => r.decision === "allow" && (r.service === serviceId || r.service === "*") && (r.expiresAt === null || r.expiresAt > now));
}

export function reachableName(registry: ServiceRegistry, policy: CompiledPolicy, name: string): ReachableName | null {
  const descriptor = serviceFor(registry, name);
  const serviceId = descriptor?.id ?? "unknown";
  if (!policyCouldReach(policy, serviceId)) return null;
  const held = !policyCouldAllow(policy, serviceId);
  if (!descriptor) return { descriptor: null, scheme: "https", port: 443, held };
  return { descriptor, scheme: descriptor.scheme, port: descriptor.ports?.[0] ?? (descriptor.scheme === "https" ? 443 : 80), held };
}

/**
 * Why no request to `host`:`port` (whose registry match is `match`, as its requests would get it)
 * could ever be allowed or held for the task, or null when one could: the sandbox listener mints
 * no leaf certificate for such a destination.
 */
export function whyUnreachable(state: EnforcementState, taskId: string, host: string, port: number, match: ServiceMatch | undefined, now = Date.now()): string | null {
  const task = state.snapshot.tasks.get(taskId);
  const compiled = task && task.expiresAt.getTime() > now ? state.policyFor(task) : null;
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  if (!compiled || "error" in compiled) return `the task has no policy in force, so nothing at ${where} can be reached; no certificate is made for it`;
  const serviceId = match && match.kind !== "none" ? match.descriptor.id : "unknown";
  if (policyCouldReach(compiled.policy, serviceId)) return null;
  return `no rule of the task's policy could let a request to ${where} (service ${serviceId}) through; no certificate is made for it`;
}
