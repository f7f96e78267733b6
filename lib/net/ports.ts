/**
 * Port rules: a destination port must be one the service lists, and never one of Bulkhead's own
 * listeners (the proxy, its health endpoint, the dashboard) on one of Bulkhead's own addresses,
 * which wins over the service. The same port number on another host is that host's business.
 */

export type PortCheck = { ok: true } | { ok: false; reason: string };

const DEFAULT_PORT = { http: 80, https: 443 } as const;

/**
 * The ports a service may be reached on: its descriptor's list, or the scheme's default when the
 * descriptor lists none. `resolveDestination` never guesses this; callers pass the result.
 */
export function allowedPortsFor(service: { ports?: readonly number[] | undefined; scheme: "http" | "https" }): number[] {
  return service.ports && service.ports.length > 0 ? [...service.ports] : [DEFAULT_PORT[service.scheme]];
}

export function checkPort(port: number, allowed: readonly number[]): PortCheck {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { ok: false, reason: `port ${String(port)} is not a valid TCP port` };
  if (allowed.length === 0) return { ok: false, reason: "no ports are allowed: the caller passed an empty list" };
  if (!allowed.includes(port)) return { ok: false, reason: `port ${port} is not one of the service's ports (${allowed.join(", ")})` };
  return { ok: true };
}

/** Why dialing `port` on `addresses` would reach Bulkhead itself, or null. */
export function ownPortReason(port: number, denied: readonly number[], addresses: readonly string[], isOwn: (address: string) => boolean): string | null {
  if (!denied.includes(port)) return null;
  const own = addresses.find(isOwn);
  return own === undefined ? null : `port ${port} belongs to Bulkhead itself, and ${own} is one of Bulkhead's own addresses`;
}
