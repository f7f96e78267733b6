import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { CanonicalRequest } from "@/lib/semantics/types";
import { allowedPortsFor } from "@/lib/net/ports";
import { precheckDestination, resolveDestination, systemLookup, type CheckedDestination, type DestinationRefusal, type Lookup } from "@/lib/net/resolve";
import { ProxyRefusal } from "./errors";
import type { DestinationChecker } from "./pipeline";

const CACHE_MS = 30_000;

/**
 * Destination checks for the pipeline: the service's ports and internal ranges, Bulkhead's own
 * ports refused on Bulkhead's own addresses, DNS resolved once per check. Checked results are cached briefly per
 * (service, host, port); the forwarder dials the cached result's address, never the name.
 */
export class ServiceDestinations implements DestinationChecker {
  private readonly cache = new Map<string, { at: number; result: CheckedDestination }>();

  constructor(
    private readonly deniedPorts: readonly number[],
    private readonly lookup: Lookup = systemLookup,
    private readonly isOwnAddress?: (address: string) => boolean,
  ) {}

  /** What can be refused without looking the name up (lib/net/resolve.ts, precheckDestination): throws the refusal. */
  async precheck(request: CanonicalRequest, descriptor: ServiceDescriptor | null): Promise<void> {
    const internal = descriptor?.proxy.internalAddresses ?? [];
    const names = internal.length > 0 && descriptor ? descriptor.hosts.filter((h) => !h.includes("*")) : [];
    const refused = precheckDestination(
      { host: request.host, port: request.port },
      { allowInternal: internal, allowInternalNames: names, allowedPorts: allowedPortsFor(descriptor ?? { scheme: request.scheme }), deniedPorts: this.deniedPorts, isOwnAddress: this.isOwnAddress },
    );
    if (refused) throw destinationRefusal(refused);
  }

  async check(request: CanonicalRequest, descriptor: ServiceDescriptor | null): Promise<CheckedDestination> {
    const internal = descriptor?.proxy.internalAddresses ?? [];
    // A local name (`localhost`, `db.internal`, a single label) is resolved only for a service
    // declared internal that lists it exactly among its hosts (no glob), and every address it
    // resolves to must then lie inside the service's internal ranges (lib/net/resolve.ts).
    const names = internal.length > 0 && descriptor ? descriptor.hosts.filter((h) => !h.includes("*")) : [];
    const key = `${descriptor?.id ?? "-"}|${internal.join(",")}|${names.join(",")}|${request.host}|${request.port}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.result;
    const result = await resolveDestination(
      { host: request.host, port: request.port },
      {
        lookup: this.lookup,
        allowInternal: internal,
        allowInternalNames: names,
        // Unknown hosts may use only the scheme's default port.
        allowedPorts: allowedPortsFor(descriptor ?? { scheme: request.scheme }),
        deniedPorts: this.deniedPorts,
        isOwnAddress: this.isOwnAddress,
      },
    );
    if (!result.ok) throw destinationRefusal(result);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: Date.now(), result });
    return result;
  }
}

function destinationRefusal(result: DestinationRefusal): ProxyRefusal {
  return new ProxyRefusal(result.code === "dns_failure" ? "bad_gateway" : result.code === "invalid_host" ? "malformed" : "denied", result.code, result.reason);
}
