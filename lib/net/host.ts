/**
 * Host parsing: turns a host as an attacker may spell it into either one canonical IP address or a
 * DNS name, with no middle ground. IPv4 follows the WHATWG URL host parser exactly (1–4 parts,
 * each decimal, octal `0…` or hex `0x…`, one trailing dot, and a host whose last label is numeric
 * *must* be an IPv4 address), because that is what decides where a URL goes. IPv6 is parsed by
 * ipaddr.js after the dotted-quad tail is converted here: ipaddr.js would turn the IPv4-compatible
 * `::127.0.0.1` into the IPv4-mapped `::ffff:127.0.0.1`, a different address.
 *
 * Callers dial the canonical address returned here, never the text they were given, so a parser
 * differential between this module and the OS cannot change what is dialed.
 */
import { isIPv6 } from "node:net";
import ipaddr from "ipaddr.js";

export type ParsedHost =
  | { kind: "ip"; address: string; family: 4 | 6; ip: ipaddr.IPv4 | ipaddr.IPv6 }
  | { kind: "name"; name: string }
  | { kind: "invalid"; reason: string };

const MAX_HOST_LENGTH = 255;
const ASCII_HOST = /^[a-z0-9._-]+$/;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Parses a URL-style host (`[v6]`, any legacy IPv4 spelling, or a name) or a bare IPv6 address. */
export function parseHost(input: string): ParsedHost {
  if (typeof input !== "string" || input.length === 0) return invalid("empty host");
  if (input.length > MAX_HOST_LENGTH) return invalid("host is too long");
  if (input.includes("%") && (input.includes(":") || input.startsWith("["))) {
    return invalid(`zone ids are refused: "${input}"`);
  }
  // Percent-encoding in a host is refused, never decoded (the canonical request refuses it too).
  if (input.includes("%")) return invalid(`percent-encoded hosts are refused: "${input}"`);
  if (input.startsWith("[") || input.endsWith("]")) {
    if (!input.startsWith("[") || !input.endsWith("]")) return invalid(`unbalanced brackets in "${input}"`);
    return parseIpv6(input.slice(1, -1));
  }
  if (input.includes(":")) return parseIpv6(input);
  return parseNameOrIpv4(input);
}

/** The canonical IP address for a URL-style host or bare IP, or null when it is not an IP literal. */
export function parseIpLiteral(host: string): string | null {
  const parsed = parseHost(host);
  return parsed.kind === "ip" ? parsed.address : null;
}

function parseNameOrIpv4(input: string): ParsedHost {
  let host = input.toLowerCase();
  if (!ASCII_HOST.test(host)) {
    // Unicode (full-width digits, IDN) means what the WHATWG parser says.
    const viaUrl = whatwgHostname(input);
    if (viaUrl === null) return invalid(`"${input}" is not a valid host`);
    host = viaUrl;
    if (host.startsWith("[")) return parseHost(host);
    if (!ASCII_HOST.test(host)) return invalid(`"${input}" is not a valid host`);
  }
  const labels = host.split(".");
  if (labels.length > 1 && labels[labels.length - 1] === "") labels.pop();
  const last = labels[labels.length - 1] ?? "";
  if (/^[0-9]+$/.test(last) || /^0x[0-9a-f]*$/.test(last)) return parseLegacyIpv4(labels, input);
  if (labels.some((label) => !LABEL.test(label))) return invalid(`"${input}" is not a valid host name`);
  const name = labels.join(".");
  if (name.length > 253) return invalid("host name is too long");
  return { kind: "name", name };
}

/** WHATWG IPv4 parsing: any failure makes the whole host invalid, as in a browser or fetch. */
function parseLegacyIpv4(parts: string[], input: string): ParsedHost {
  if (parts.length > 4) return invalid(`"${input}" has more than four IPv4 parts`);
  const numbers: number[] = [];
  for (const part of parts) {
    const value = parseIpv4Number(part);
    if (value === null) return invalid(`"${input}" ends in a number but is not an IPv4 address`);
    numbers.push(value);
  }
  const last = numbers.pop() as number;
  if (numbers.some((n) => n > 255)) return invalid(`"${input}" has an IPv4 part above 255`);
  if (last >= 256 ** (4 - numbers.length)) return invalid(`"${input}" is outside the IPv4 range`);
  let value = last;
  numbers.forEach((n, i) => {
    value += n * 256 ** (3 - i);
  });
  const octets = [3, 2, 1, 0].map((shift) => Math.floor(value / 256 ** shift) % 256);
  return ipResult(new ipaddr.IPv4(octets));
}

function parseIpv4Number(part: string): number | null {
  if (part === "") return null;
  let digits = part;
  let radix = 10;
  if (digits.startsWith("0x")) {
    digits = digits.slice(2);
    radix = 16;
  } else if (digits.length > 1 && digits.startsWith("0")) {
    digits = digits.slice(1);
    radix = 8;
  }
  if (digits === "") return 0;
  const pattern = radix === 16 ? /^[0-9a-f]+$/ : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!pattern.test(digits)) return null;
  // Beyond 2^53 precision is lost, but such a value is far outside the range and still refused.
  return parseInt(digits, radix);
}

function parseIpv6(text: string): ParsedHost {
  if (text.includes("%")) return invalid(`zone ids are refused: "${text}"`);
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !isIPv6(text)) return invalid(`"${text}" is not a valid IPv6 address`);
  let hex = text.toLowerCase();
  if (hex.includes(".")) {
    const dotted = /^(.*:)([0-9.]+)$/.exec(hex);
    if (!dotted) return invalid(`"${text}" has an invalid IPv4 tail`);
    const octets = strictDottedQuad(dotted[2] as string);
    if (octets === null) return invalid(`"${text}" has an invalid IPv4 tail`);
    const high = ((octets[0] as number) * 256 + (octets[1] as number)).toString(16);
    const low = ((octets[2] as number) * 256 + (octets[3] as number)).toString(16);
    hex = `${dotted[1]}${high}:${low}`;
  }
  if (!ipaddr.IPv6.isValid(hex)) return invalid(`"${text}" is not a valid IPv6 address`);
  return ipResult(ipaddr.IPv6.parse(hex));
}

/** The only IPv4 spelling allowed inside IPv6 (WHATWG and inet_pton agree): a.b.c.d, no leading zeros. */
function strictDottedQuad(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const octets = parts.map((p) => (/^(?:0|[1-9][0-9]{0,2})$/.test(p) ? Number(p) : 256));
  return octets.every((o) => o <= 255) ? octets : null;
}

function ipResult(ip: ipaddr.IPv4 | ipaddr.IPv6): ParsedHost {
  if (ip.kind() === "ipv4") return { kind: "ip", address: ip.toString(), family: 4, ip };
  return { kind: "ip", address: (ip as ipaddr.IPv6).toRFC5952String(), family: 6, ip };
}

function whatwgHostname(input: string): string | null {
  if (/[\s/\\?#@:[\]]/.test(input)) return null;
  try {
    return new URL(`http://${input}/`).hostname;
  } catch {
    return null;
  }
}

function invalid(reason: string): ParsedHost {
  return { kind: "invalid", reason };
}
