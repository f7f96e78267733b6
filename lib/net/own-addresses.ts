/**
 * Bulkhead's own addresses: where its own ports (proxy, health, dashboard) must never be dialed.
 * Loopback and unspecified always count (they reach this host); so do the addresses of this
 * machine's interfaces, re-read at most every 30 s (interfaces change rarely), and any extra
 * addresses the listeners were bound to.
 */
import os from "node:os";
import { classifyAddress } from "./address";
import { parseHost } from "./host";

const REREAD_MS = 30_000;
let machine: { at: number; addresses: Set<string> } | null = null;

function machineAddresses(): Set<string> {
  if (machine && Date.now() - machine.at < REREAD_MS) return machine.addresses;
  const addresses = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const entry of list ?? []) {
      const parsed = parseHost(entry.address.replace(/%.*$/, ""));
      if (parsed.kind === "ip") addresses.add(parsed.address);
    }
  }
  machine = { at: Date.now(), addresses };
  return addresses;
}

function reachesThisHost(address: string): boolean {
  const verdict = classifyAddress(address);
  return !verdict.ok && (verdict.category === "loopback" || verdict.category === "unspecified" || verdict.embedded?.category === "loopback");
}

/** Loopback, unspecified, or an address of one of this machine's interfaces (canonical form). */
export function isMachineAddress(address: string): boolean {
  return reachesThisHost(address) || machineAddresses().has(address);
}

/** `isMachineAddress`, plus the (IP literal) hosts Bulkhead's listeners are bound to. */
export function ownAddressChecker(listenHosts: readonly string[]): (address: string) => boolean {
  const bound = new Set<string>();
  for (const host of listenHosts) {
    const parsed = parseHost(host);
    if (parsed.kind === "ip") bound.add(parsed.address);
  }
  return (address) => bound.has(address) || isMachineAddress(address);
}
