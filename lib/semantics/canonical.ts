/**
 * One parsed request decides and dials. `canonicalizeRequest` turns an absolute-form request into
 * the single `CanonicalRequest` that the classifier evaluates and the proxy forwards.
 *
 * WHATWG URL parsing is used for the authority only (IDN → punycode, IPv4 shorthand such as
 * `0x7f.1` → `127.0.0.1`); everything a URL parser would silently "fix" is rejected first:
 * userinfo, backslashes, non-http(s) schemes, `http:host` without "//", fragments, control
 * characters and whitespace, and a Host header that names a different authority.
 * Path rules live in `canonical-path.ts`.
 */
import { canonicalizePath, canonicalizeQuery } from "@/lib/semantics/canonical-path";
import { reject, type CanonicalRequest, type Rejection } from "@/lib/semantics/types";

export interface RawRequest {
  method: string;
  /** Absolute URL (absolute-form request target). */
  url: string;
  headers?: Record<string, string | readonly string[] | undefined>;
  body?: Uint8Array | string | null;
}

export type CanonicalResult = { ok: true; request: CanonicalRequest } | Rejection;

const MAX_URL_LENGTH = 16 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DEFAULT_PORT = { http: 80, https: 443 } as const;
/**
 * Headers whose duplicates change meaning (routing, framing, body decoding, and the database
 * Neon's SQL-over-HTTP endpoint runs in: a server reads the first, the joined value is another).
 */
const SINGLE_VALUED = new Set(["host", "content-type", "content-length", "content-encoding", "transfer-encoding", "neon-connection-string"]);

export function canonicalizeRequest(raw: RawRequest): CanonicalResult {
  try {
    return canonicalize(raw);
  } catch {
    return reject("invalid_request", "request could not be canonicalised");
  }
}

function canonicalize(raw: RawRequest): CanonicalResult {
  if (typeof raw.method !== "string" || !TOKEN.test(raw.method)) {
    return reject("invalid_method", "method is not a valid HTTP token");
  }
  const method = raw.method.toUpperCase();
  if (method === "CONNECT") return reject("unsupported_method", "CONNECT is not a request to classify");
  // TRACE (and IIS's TRACK) echo the request back, including the credential Bulkhead injects.
  if (method === "TRACE" || method === "TRACK") return reject("unsupported_method", `${method} echoes the request back, credentials included`);

  const url = raw.url;
  if (typeof url !== "string" || url.length === 0) return reject("not_absolute", "request target must be an absolute URL");
  if (url.length > MAX_URL_LENGTH) return reject("url_too_long", "URL is too long");
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return reject("control_character", "control character in URL");
    if (c === 0x20) return reject("whitespace", "whitespace in URL");
  }
  if (url.includes("\\")) return reject("backslash", "backslash in URL");

  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  if (!schemeMatch) return reject("not_absolute", "request target must be an absolute URL");
  const scheme = (schemeMatch[1] as string).toLowerCase();
  if (scheme !== "http" && scheme !== "https") return reject("unsupported_scheme", `scheme "${scheme}" is not http or https`);
  const afterScheme = url.slice(schemeMatch[0].length);
  if (!afterScheme.startsWith("//")) return reject("malformed_authority", "URL must have '//' after the scheme");
  if (url.includes("#")) return reject("fragment", "URL must not contain a fragment");

  const rest = afterScheme.slice(2);
  const authorityEnd = rest.search(/[/?]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const pathAndQuery = authorityEnd < 0 ? "" : rest.slice(authorityEnd);
  if (authority.includes("@")) return reject("userinfo", "userinfo (user:password@) in URL authority");
  if (authority === "") return reject("missing_host", "URL has no host");

  const origin = canonicalAuthority(scheme, authority);
  if (!origin.ok) return origin;

  const queryStart = pathAndQuery.indexOf("?");
  const rawPath = queryStart < 0 ? pathAndQuery : pathAndQuery.slice(0, queryStart);
  const rawQuery = queryStart < 0 ? "" : pathAndQuery.slice(queryStart + 1);
  const path = canonicalizePath(rawPath);
  if (!path.ok) return path;
  const query = canonicalizeQuery(rawQuery);
  if (!query.ok) return query;

  const headers = canonicalHeaders(raw.headers ?? {});
  if (!headers.ok) return headers;
  const hostHeader = headers.headers["host"];
  if (hostHeader !== undefined) {
    const fromHeader = canonicalAuthority(scheme, hostHeader.trim());
    if (!fromHeader.ok || fromHeader.host !== origin.host || fromHeader.port !== origin.port) {
      return reject("host_mismatch", "Host header does not match the URL authority");
    }
  }

  const request: CanonicalRequest = {
    method,
    scheme,
    host: origin.host,
    port: origin.port,
    path: path.path,
    query: query.query,
    headers: headers.headers,
  };
  const body = toBytes(raw.body);
  if (body !== undefined) request.body = body;
  return { ok: true, request };
}

/**
 * The one canonical form of an authority (`host[:port]`), used for absolute-form targets, `Host`
 * headers and CONNECT targets alike, so that both sides of a tunnel compare equal spellings:
 * lower case, IDN as punycode, IPv4 shorthand expanded, IPv6 bracketed in RFC 5952 form, one
 * trailing dot removed. Percent-encoding is refused rather than decoded: `pub%6cic.test` is not
 * a spelling of `public.test` that any client means.
 */
export function canonicalAuthority(
  scheme: "http" | "https",
  authority: string,
): { ok: true; host: string; port: number } | Rejection {
  // Every request parses its URL's authority and its Host header, and an agent talks to a few
  // hosts: the parse (WHATWG URL) is remembered per spelling. Only accepted spellings are kept,
  // frozen (every caller reads them), and at most AUTHORITY_MEMO_MAX of them: past that the memo
  // starts again, so many distinct spellings cost what they did without it.
  const memo = authorityMemo[scheme];
  const known = memo.get(authority);
  if (known !== undefined) return known;
  const result = parseAuthority(scheme, authority);
  if (result.ok && authority.length <= 300) {
    if (memo.size >= AUTHORITY_MEMO_MAX) memo.clear();
    memo.set(authority, Object.freeze(result));
  }
  return result;
}

const AUTHORITY_MEMO_MAX = 1024;
/** One memo per scheme: the same spelling means another default port under each. */
const authorityMemo = {
  http: new Map<string, Readonly<{ ok: true; host: string; port: number }>>(),
  https: new Map<string, Readonly<{ ok: true; host: string; port: number }>>(),
};

function parseAuthority(scheme: "http" | "https", authority: string): { ok: true; host: string; port: number } | Rejection {
  if (authority === "" || /[@/\\?#\s]/.test(authority)) return reject("invalid_host", "invalid authority");
  if (authority.includes("%")) return reject("invalid_host", "percent-encoded authority (hosts are never decoded)");
  let parsed: URL;
  try {
    parsed = new URL(`${scheme}://${authority}/`);
  } catch {
    return reject("invalid_host", `invalid host "${authority}"`);
  }
  if (parsed.username !== "" || parsed.password !== "") return reject("userinfo", "userinfo in URL authority");
  let host = parsed.hostname.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host === "" || host.endsWith(".") || host.startsWith(".")) return reject("invalid_host", `invalid host "${authority}"`);
  const port = parsed.port === "" ? DEFAULT_PORT[scheme] : Number(parsed.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return reject("invalid_port", "invalid port");
  return { ok: true, host, port };
}

function canonicalHeaders(
  input: Record<string, string | readonly string[] | undefined>,
): { ok: true; headers: Record<string, string> } | Rejection {
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const rawName of Object.keys(input)) {
    const rawValue = input[rawName];
    if (rawValue === undefined) continue;
    if (!TOKEN.test(rawName)) return reject("invalid_header", `invalid header name "${rawName}"`);
    const name = rawName.toLowerCase();
    // The usual case, one value, without the array the general case builds.
    if (typeof rawValue === "string") {
      if (/[\r\n\0]/.test(rawValue)) return reject("invalid_header", `invalid value for header "${name}"`);
      const prior = headers[name];
      if (prior !== undefined && SINGLE_VALUED.has(name)) return reject("duplicate_header", `header "${name}" appears more than once`);
      headers[name] = prior === undefined ? rawValue : `${prior}, ${rawValue}`;
      continue;
    }
    const values = [...rawValue];
    for (const v of values) {
      if (typeof v !== "string" || /[\r\n\0]/.test(v)) return reject("invalid_header", `invalid value for header "${name}"`);
    }
    const existing = headers[name];
    if (SINGLE_VALUED.has(name) && (values.length > 1 || existing !== undefined)) {
      return reject("duplicate_header", `header "${name}" appears more than once`);
    }
    if (values.length === 0) continue;
    const joined = values.join(", ");
    headers[name] = existing === undefined ? joined : `${existing}, ${joined}`;
  }
  return { ok: true, headers };
}

function toBytes(body: RawRequest["body"]): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return new TextEncoder().encode(body);
  return body;
}

/** The canonical absolute URL (default port omitted): what approval digests and audit record. */
export function canonicalUrl(req: CanonicalRequest): string {
  const port = req.port === DEFAULT_PORT[req.scheme] ? "" : `:${req.port}`;
  const query = req.query === "" ? "" : `?${req.query}`;
  return `${req.scheme}://${req.host}${port}${req.path}${query}`;
}

/**
 * A request target as audit events and decision log lines record it: with any user-info
 * (`user:password@`, in the authority of an absolute URL, after any `//`, or in a CONNECT
 * target) masked, and cut to 2048 characters. Such a request is refused for carrying it, and
 * what it carries is a credential: the agent's task token, or a password it found.
 */
export function recordedTarget(target: string): string {
  let out = target.replace(/\/\/[^/?#]*@/g, "//***@");
  // Forms without `//` (a CONNECT target, `http:user@host`, backslashes for slashes).
  if (!out.startsWith("/") && !out.includes("//")) out = out.replace(/^[^/?#]*@/, "***@");
  return out.slice(0, 2048);
}
