/**
 * The sandbox address pools: slot n of a pool gets the (n + 2)-th address of the IPv4 pool and of
 * the IPv6 pool (the first host address of each is the gateway on the host side). Pure.
 */
import ipaddr from "ipaddr.js";
import type { IsolationConfig } from "@/lib/config/isolation";

export interface SlotAddresses {
  slot: number;
  v4: string;
  v6: string;
}

/** How many sandboxes the IPv4 pool holds (the IPv6 pool is always larger). */
export function poolSize(config: Pick<IsolationConfig, "poolV4">): number {
  // Minus network, gateway and broadcast addresses.
  return Math.min(2 ** (32 - config.poolV4.prefix) - 3, 999_999);
}

function offset(network: string, n: number): string {
  const bytes = ipaddr.parse(network).toByteArray();
  let carry = n;
  for (let i = bytes.length - 1; i >= 0 && carry > 0; i--) {
    const sum = (bytes[i] ?? 0) + (carry % 256);
    bytes[i] = sum % 256;
    carry = Math.floor(carry / 256) + Math.floor(sum / 256);
  }
  return ipaddr.fromByteArray(bytes).toString();
}

export function slotAddresses(config: Pick<IsolationConfig, "poolV4" | "poolV6">, slot: number): SlotAddresses {
  return { slot, v4: offset(config.poolV4.network, slot + 2), v6: offset(config.poolV6.network, slot + 2) };
}

/** The lowest slot not in `used`, or null when the pool is exhausted. */
export function freeSlot(config: Pick<IsolationConfig, "poolV4">, used: ReadonlySet<number>): number | null {
  const size = poolSize(config);
  for (let slot = 0; slot < size; slot++) if (!used.has(slot)) return slot;
  return null;
}

/** The slot an address of the pool belongs to, or null. */
export function slotOfAddress(config: Pick<IsolationConfig, "poolV4" | "poolV6">, address: string): number | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address);
  } catch {
    return null;
  }
  const net = parsed.kind() === "ipv4" ? config.poolV4 : config.poolV6;
  const base = ipaddr.parse(net.network).toByteArray();
  const bytes = parsed.toByteArray();
  if (!parsed.match(ipaddr.parse(net.network), net.prefix)) return null;
  let diff = 0;
  for (let i = Math.max(0, bytes.length - 4); i < bytes.length; i++) diff = diff * 256 + ((bytes[i] ?? 0) - (base[i] ?? 0));
  const slot = diff - 2;
  return slot >= 0 && slot < poolSize({ poolV4: config.poolV4 }) ? slot : null;
}
