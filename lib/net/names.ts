/**
 * Names refused before any DNS query: what they resolve to is decided by the local host (hosts
 * file, mDNS, search domains, the cloud's internal resolver), not by public DNS, so they are a way
 * into the network even when today's answer looks harmless. A service declared internal may name
 * such a host explicitly (`allowInternalNames`); its addresses must then fall inside the service's
 * `allowInternal` CIDRs (see `resolve.ts`).
 */

/** Suffixes (and the names themselves) reserved for local or private use. */
const INTERNAL_SUFFIXES = [
  "localhost", // RFC 6761: always the local host
  "localdomain",
  "local", // RFC 6762: multicast DNS
  "internal", // ICANN-reserved private TLD; metadata.google.internal lives here
  "intranet",
  "lan",
  "home",
  "corp",
  "home.arpa", // RFC 8375
] as const;

/** Why a (canonical, lower-case, no trailing dot) host name is internal, or null when it is not. */
export function internalNameReason(name: string): string | null {
  for (const suffix of INTERNAL_SUFFIXES) {
    if (name === suffix || name.endsWith(`.${suffix}`)) return `"${name}" is a local name (.${suffix})`;
  }
  if (!name.includes(".")) return `single-label name "${name}" is resolved through local search domains`;
  return null;
}
