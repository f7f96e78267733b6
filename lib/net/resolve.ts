/**
 * `resolveDestination`: the one place that decides which address the proxy may dial.
 *
 * ┌──────────────────────────────────────────────────────────────────────────────────────────┐
 * │ CONTRACT: dial `result.address` — never `host`. Resolving the name again (in the dialer,   │
 * │ in undici, in a retry) lets DNS answer differently the second time (DNS rebinding). Use    │
 * │ `dialChecked` or `checkedConnector` from `dial.ts`, which accept only results made here.   │
 * │ The result may be cached by the caller; this function looks the name up once per call.    │
 * └──────────────────────────────────────────────────────────────────────────────────────────┘
 *
 * Order: port (no DNS for a port the service does not list), host syntax, local names (no DNS),
 * then the addresses: an IP literal is checked as written; a name is resolved once, and if ANY
 * answer is forbidden the whole destination is refused — a name mixing public and private
 * answers is a rebinding attempt, whichever answer a client would have picked. Last, Bulkhead's
 * own ports are refused on Bulkhead's own addresses (a public API on :8080 is not Bulkhead).
 */
import { promises as dns } from "node:dns";
import { classifyAddress, parseHost, type AddressClass } from "./address";
import { allowingRange, parseAllowInternal, type AllowedRange } from "./allow-internal";
import { HostsFile } from "./hosts-file";
import { internalNameReason } from "./names";
import { isMachineAddress } from "./own-addresses";
import { checkPort, ownPortReason } from "./ports";

export interface LookupAddress {
  address: string;
  family: number;
}

/** The shape of `dns.promises.lookup(host, { all: true, verbatim: true })`. */
export type Lookup = (hostname: string, options: { all: true; verbatim: true }) => Promise<LookupAddress[]>;

/**
 * The production resolver, given an absolute name (`name.`): the hosts file first (glibc does
 * not match absolute names there), then the operating system's resolver with the absolute name,
 * so search domains never apply.
 */
export function createSystemLookup(hosts = new HostsFile(), resolver: Lookup = (hostname, options) => dns.lookup(hostname, options)): Lookup {
  return async (hostname, options) => {
    const name = hostname.toLowerCase().replace(/\.$/, "");
    const pinned = await hosts.lookup(name);
    if (pinned) return pinned.map((e) => ({ address: e.address, family: e.family }));
    return resolver(`${name}.`, options);
  };
}

export const systemLookup: Lookup = createSystemLookup();

export interface Destination {
  /** A URL-style host: a name, an IPv4 address in any spelling, or `[IPv6]`. */
  host: string;
  port: number;
}

export interface ResolveOptions {
  /** `dns.promises.lookup` in production; injected in tests. */
  lookup: Lookup;
  /** CIDRs of a service declared internal: addresses inside them are allowed despite their category. */
  allowInternal?: readonly string[];
  /** Local names (`db.internal`, `intranet`) the service names explicitly; see `names.ts`. */
  allowInternalNames?: readonly string[];
  /** The service's ports: pass `allowedPortsFor(descriptor)`; an empty list allows nothing. */
  allowedPorts: readonly number[];
  /** Bulkhead's own ports (proxy listener, health, dashboard): refused on Bulkhead's own addresses. */
  deniedPorts: readonly number[];
  /** Whether a canonical address is one of Bulkhead's own; default: loopback, unspecified, this machine's interfaces. */
  isOwnAddress?: (address: string) => boolean;
  /** DNS timeout; defaults to 2 s. */
  timeoutMs?: number;
}

/** A destination that passed every check. Only `resolveDestination` makes these (see `isCheckedDestination`). */
export interface CheckedDestination {
  readonly ok: true;
  /** The host as the service knows it (canonical; no brackets): for SNI, certificates and `Host`. */
  readonly host: string;
  /** The address to dial, canonical. */
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  /** Every address that was checked (all DNS answers, in resolver order). */
  readonly checked: readonly string[];
  /** True when an address was allowed only by `allowInternal`. */
  readonly internal: boolean;
}

export type DestinationRefusalCode = "destination_forbidden" | "port_forbidden" | "dns_failure" | "invalid_host";

export interface DestinationRefusal {
  ok: false;
  code: DestinationRefusalCode;
  reason: string;
}

export type DestinationResult = CheckedDestination | DestinationRefusal;

export const DEFAULT_DNS_TIMEOUT_MS = 2000;

const issued = new WeakSet<object>();

/** True only for results returned by `resolveDestination` (frozen, so they cannot be edited after). */
export function isCheckedDestination(value: unknown): value is CheckedDestination {
  return typeof value === "object" && value !== null && issued.has(value);
}

/**
 * Every check of `resolveDestination` that needs no DNS answer: the port, the host's form, an
 * address given literally, a local name's declaration. Null when nothing refuses it so far (a
 * name is not looked up: its answers are checked later, by `resolveDestination`). For a request
 * held for a person: looking its name up before anyone approved it let an agent carry data out
 * in names (`<data>.attacker.example`) that the resolver sent on, once per held request.
 */
export function precheckDestination(destination: Destination, options: Omit<ResolveOptions, "lookup" | "timeoutMs">): DestinationRefusal | null {
  const early = beforeLookup(destination, options);
  return "name" in early || early.ok ? null : early;
}

type EarlyResult = DestinationResult | { name: string; local: string | null; ranges: readonly AllowedRange[] };

function beforeLookup(destination: Destination, options: Omit<ResolveOptions, "lookup" | "timeoutMs">): EarlyResult {
  const port = checkPort(destination.port, options.allowedPorts);
  if (!port.ok) return refuse("port_forbidden", port.reason);
  const own = options.isOwnAddress ?? isMachineAddress;

  const parsed = parseHost(destination.host);
  if (parsed.kind === "invalid") return refuse("invalid_host", parsed.reason);

  const allow = parseAllowInternal(options.allowInternal ?? []);
  if (!allow.ok) return refuse("destination_forbidden", allow.reason);

  if (parsed.kind === "ip") {
    const verdict = checkAddress(classifyAddress(parsed.address), allow.ranges, false);
    if (!verdict.ok) return refuse("destination_forbidden", verdict.reason);
    const self = ownPortReason(destination.port, options.deniedPorts, [parsed.address], own);
    if (self) return refuse("port_forbidden", self);
    return issue(parsed.address, parsed.address, destination.port, [parsed.address], verdict.internal);
  }

  const name = parsed.name;
  const local = internalNameReason(name);
  if (local !== null) {
    if (!declaredNames(options.allowInternalNames).has(name)) {
      return refuse("destination_forbidden", `${local}; refused unless an internal service names it`);
    }
    if (allow.ranges.length === 0) {
      return refuse("destination_forbidden", `${local}; the service names it but declares no allowInternal CIDRs`);
    }
  }
  return { name, local, ranges: allow.ranges };
}

export async function resolveDestination(destination: Destination, options: ResolveOptions): Promise<DestinationResult> {
  const early = beforeLookup(destination, options);
  if (!("name" in early)) return early;
  const { name, local } = early;
  const allow = { ranges: early.ranges };
  const own = options.isOwnAddress ?? isMachineAddress;

  const answers = await lookupOnce(options.lookup, name, options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS);
  if (!answers.ok) return refuse("dns_failure", answers.reason);

  const checked: string[] = [];
  let internal = false;
  for (const answer of answers.addresses) {
    const address = classifyAddress(answer);
    // A local name must stay inside the service's CIDRs even when an answer is public.
    const verdict = checkAddress(address, allow.ranges, local !== null);
    if (!verdict.ok) {
      return refuse(
        "destination_forbidden",
        `"${name}" resolved to a forbidden address (${verdict.reason}); a name with any forbidden answer is refused`,
      );
    }
    internal ||= verdict.internal;
    checked.push(address.address as string);
  }
  const self = ownPortReason(destination.port, options.deniedPorts, checked, own);
  if (self) return refuse("port_forbidden", self);
  return issue(name, checked[0] as string, destination.port, checked, internal);
}

type AddressVerdict = { ok: true; internal: boolean } | { ok: false; reason: string };

function checkAddress(address: AddressClass, ranges: readonly AllowedRange[], mustBeInternal: boolean): AddressVerdict {
  if (address.category === "invalid") return { ok: false, reason: address.reason };
  const cidr = allowingRange(address, ranges);
  if (cidr !== null) return { ok: true, internal: true };
  if (!address.ok) return { ok: false, reason: address.reason };
  if (mustBeInternal) return { ok: false, reason: `${address.address} is outside the service's allowInternal CIDRs` };
  return { ok: true, internal: false };
}

type LookupOutcome = { ok: true; addresses: string[] } | { ok: false; reason: string };

async function lookupOnce(lookup: Lookup, name: string, timeoutMs: number): Promise<LookupOutcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    // The trailing dot makes the name absolute, so the resolver's search domains never apply
    // (systemLookup consults the hosts file for it first).
    const answer = await Promise.race([lookup(`${name}.`, { all: true, verbatim: true }), timeout]);
    if (answer === "timeout") return { ok: false, reason: `DNS lookup for "${name}" timed out after ${timeoutMs} ms` };
    if (!Array.isArray(answer) || answer.length === 0) return { ok: false, reason: `DNS lookup for "${name}" returned no addresses` };
    const addresses = answer.map((a: unknown) =>
      typeof a === "object" && a !== null && typeof (a as LookupAddress).address === "string" ? (a as LookupAddress).address : "",
    );
    return { ok: true, addresses };
  } catch (error) {
    const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "error";
    return { ok: false, reason: `DNS lookup for "${name}" failed (${code})` };
  } finally {
    clearTimeout(timer);
  }
}

function declaredNames(names: readonly string[] | undefined): Set<string> {
  const set = new Set<string>();
  for (const raw of names ?? []) {
    const parsed = parseHost(raw);
    if (parsed.kind === "name") set.add(parsed.name);
  }
  return set;
}

function issue(host: string, address: string, port: number, checked: string[], internal: boolean): CheckedDestination {
  const family = address.includes(":") ? 6 : 4;
  const result: CheckedDestination = Object.freeze({
    ok: true as const,
    host,
    address,
    family,
    port,
    checked: Object.freeze([...checked]),
    internal,
  });
  issued.add(result);
  return result;
}

function refuse(code: DestinationRefusalCode, reason: string): DestinationRefusal {
  return { ok: false, code, reason };
}
