// Types for lib/http/client-addresses.mjs (plain JavaScript: the dashboard's own server loads it before anything is compiled).
/** An address in its canonical text form (IPv4-mapped IPv6 as IPv4), or null if it is not one. */
export function normalizeAddress(text: string): string | null;
/** Whether `address` is one of `trusted` (addresses or CIDR ranges). */
export function isTrustedAddress(address: string, trusted: readonly string[]): boolean;
/** BULKHEAD_TRUSTED_PROXIES as a list. */
export function trustedList(value: string | undefined): string[];
/** An IPv4 address itself, an IPv6 address by its /64. */
export function addressThrottleKey(address: string): string;
