import { isIPv4, isIPv6 } from "node:net";

/**
 * A credential's service is (scheme, host, port). The host is stored in exactly one spelling (the
 * one a WHATWG URL parser produces), so the proxy can match it by string equality and nothing
 * reaches the vault that a parser could read as a different address.
 */
export const SCHEMES = ["http", "https"] as const;
export type Scheme = (typeof SCHEMES)[number];
export const DEFAULT_PORTS: Record<Scheme, number> = { http: 80, https: 443 };

export type HostResult = { ok: true; host: string } | { ok: false; message: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
// WHATWG URL: a host whose last label is a number (decimal, or 0x hex) is parsed as IPv4, so
// "2130706433", "0x7f.1" and "127.1" are all 127.0.0.1. Only the plain dotted quad is accepted.
const ENDS_IN_NUMBER = /(?:^|\.)(?:\d+|0x[0-9a-f]*)$/i;

const fail = (message: string): HostResult => ({ ok: false, message });

/** Validates and normalises a service host: a DNS name, an IPv4 dotted quad or an IPv6 literal. */
export function normalizeHost(input: string): HostResult {
  const text = input.trim();
  if (text === "") return fail("Enter the service host, e.g. api.github.com.");
  if (text.length > 253) return fail("The host must be at most 253 characters.");
   
  if (/[\u0000-\u0020\u007f]/.test(text)) return fail("The host must not contain spaces or control characters.");
  if (text.includes("://")) return fail("Enter the host only, without the scheme (choose the scheme separately).");
  if (text.includes("@")) return fail("The host must not contain user information (user@).");
  if (/[/\\?#]/.test(text)) return fail("Enter the host only: no path, query or fragment.");
   
  if (/[^\u0000-\u007f]/.test(text)) return fail("Use the ASCII (xn--) form of internationalised host names.");

  if (text.startsWith("[") || text.includes(":")) {
    const inner = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
    if (inner.includes("%")) return fail("IPv6 zone identifiers are not allowed.");
    if (!isIPv6(inner)) {
      return fail(text.startsWith("[") ? "Not a valid IPv6 address." : "Enter the port in the port field, not in the host.");
    }
    return { ok: true, host: canonicalHostname(`[${inner}]`).replace(/^\[|\]$/g, "") };
  }

  const host = text.toLowerCase();
  if (host.endsWith(".")) return fail("Remove the trailing dot from the host.");
  if (ENDS_IN_NUMBER.test(host)) {
    if (!DOTTED_QUAD.test(host) || !isIPv4(host)) {
      return fail("Write an IPv4 address as four decimal numbers without leading zeros, e.g. 192.0.2.10.");
    }
    return { ok: true, host };
  }
  for (const label of host.split(".")) {
    if (!LABEL.test(label)) {
      return fail("Each part of the host name must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen.");
    }
  }
  // Belt and braces: the URL parser must read the very same host.
  if (canonicalHostname(host) !== host) return fail("The host is not in canonical form.");
  return { ok: true, host };
}

function canonicalHostname(host: string): string {
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return "";
  }
}

/** `scheme://host:port` with IPv6 in brackets: the key the proxy looks credentials up by. */
export function serviceKey(scheme: string, host: string, port: number): string {
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}
