/**
 * TLS server names (SNI) are chosen by the agent, so they are parsed strictly before anything is
 * minted for them: a syntactically valid DNS name in LDH form, or an IPv4/IPv6 literal. Pure.
 */
import { isIPv6 } from "node:net";
import { AppError } from "@/lib/errors/app-error";

export type ServerNameProblem =
  | "not_a_string"
  | "empty"
  | "too_long"
  | "invalid_character"
  | "wildcard"
  | "empty_label"
  | "label_too_long"
  | "label_hyphen"
  | "numeric_tld"
  | "invalid_ip";

/** The name cannot be used as a TLS server name; `reason` is machine-readable. */
export class InvalidServerNameError extends AppError {
  readonly reason: ServerNameProblem;
  constructor(reason: ServerNameProblem) {
    // The offending name is attacker-controlled and deliberately not echoed.
    super("INVALID_INPUT", `invalid TLS server name: ${reason}`);
    this.name = "InvalidServerNameError";
    this.reason = reason;
  }
}

export interface ServerName {
  kind: "dns" | "ip";
  /** Canonical form: lower case, no trailing dot; IPv6 compressed as the WHATWG URL parser writes it. */
  name: string;
}

const MAX_NAME = 253;
const MAX_LABEL = 63;
// Every printable ASCII character except space; anything else (NUL, controls, non-ASCII,
// spaces) is refused outright. IDNs arrive as A-labels ("xn--..."), which are LDH.
const PRINTABLE = /^[\x21-\x7e]+$/;
const LDH_LABEL = /^[a-z0-9-]+$/;
// Dotted-quad only, no leading zeros: "127.1", "0x7f.0.0.1" and "0177.0.0.1" are not literals here.
const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

/** Parses and canonicalises a server name, or throws InvalidServerNameError. */
export function validateServerName(input: unknown): ServerName {
  if (typeof input !== "string") throw new InvalidServerNameError("not_a_string");
  if (input.length === 0) throw new InvalidServerNameError("empty");
  // Bound the work before any further parsing (a trailing dot may still be removed below).
  if (input.length > MAX_NAME + 1) throw new InvalidServerNameError("too_long");
  if (!PRINTABLE.test(input)) throw new InvalidServerNameError("invalid_character");
  if (input.includes("*")) throw new InvalidServerNameError("wildcard");

  if (input.includes(":")) return { kind: "ip", name: canonicalIpv6(input) };

  let name = input.toLowerCase();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name.length === 0) throw new InvalidServerNameError("empty");
  if (name.length > MAX_NAME) throw new InvalidServerNameError("too_long");
  if (IPV4.test(name)) return { kind: "ip", name };

  const labels = name.split(".");
  for (const label of labels) {
    if (label.length === 0) throw new InvalidServerNameError("empty_label");
    if (label.length > MAX_LABEL) throw new InvalidServerNameError("label_too_long");
    if (!LDH_LABEL.test(label)) throw new InvalidServerNameError("invalid_character");
    if (label.startsWith("-") || label.endsWith("-")) throw new InvalidServerNameError("label_hyphen");
  }
  // A last label that starts with a digit would make "1.2.3", "0x7f" or "127.0.0.01" a host
  // name that URL parsers read as an IPv4 address; real TLDs start with a letter.
  const tld = labels[labels.length - 1] ?? "";
  if (!/^[a-z]/.test(tld)) throw new InvalidServerNameError("numeric_tld");
  return { kind: "dns", name };
}

function canonicalIpv6(text: string): string {
  // No zone ids ("fe80::1%eth0") and no brackets: neither belongs in a certificate or SNI.
  if (text.includes("%") || !isIPv6(text)) throw new InvalidServerNameError("invalid_ip");
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/** True when `a` and `b` are the same server name after canonicalisation (both must be valid). */
export function sameServerName(a: string, b: string): boolean {
  return validateServerName(a).name === validateServerName(b).name;
}
