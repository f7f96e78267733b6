/**
 * Which names a task could ever reach: a name belongs to a service (or to no service: "unknown"),
 * and the task's policy can only let traffic through to a service that one of its allow or hold
 * rules names (or `*`), or when unlisted actions are held, or in report mode. Names outside that
 * are answered NXDOMAIN by the sandbox resolver without any upstream lookup, so DNS cannot carry
 * data out. Pure over the enforcement view.
 */
import type { CompiledPolicy } from "@/lib/policy/compiled";
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { ServiceRegistry } from "@/lib/semantics/registry";

export interface ReachableName {
  descriptor: ServiceDescriptor | null;
  scheme: "http" | "https";
  port: number;
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

export function reachableName(registry: ServiceRegistry, policy: CompiledPolicy, name: string): ReachableName | null {
  const descriptor = serviceFor(registry, name);
  if (!policyCouldReach(policy, descriptor?.id ?? "unknown")) return null;
  if (!descriptor) return { descriptor: null, scheme: "https", port: 443 };
  return { descriptor, scheme: descriptor.scheme, port: descriptor.ports?.[0] ?? (descriptor.scheme === "https" ? 443 : 80) };
}
