/** Connection-level headers (RFC 9110 §7.6.1) never forwarded in either direction. */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Headers the agent may not send upstream: its own credentials (the proxy injects the real
 * one), routing hints an upstream or an intermediary might honour, and anything else that
 * would let the agent steer where or as whom the request goes.
 */
export const AGENT_STRIPPED = new Set([
  "authorization",
  // A one-use approval grant (202-and-poll) is for Bulkhead, not the upstream.
  "bulkhead-approval",
  "cookie",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-forwarded-server",
  "x-real-ip",
  "x-original-url",
  "x-rewrite-url",
  "x-host",
  "x-http-host-override",
  "x-proxy-url",
  "via",
  "host",
  "content-length", // recomputed from the exact body forwarded
  "expect",
  // The client's address as a proxy or CDN in front of an upstream would vouch for it: an
  // upstream that allows by source address (an office network, a partner's range) reads these.
  "true-client-ip",
  "x-client-ip",
  "client-ip",
  "x-cluster-client-ip",
  "cf-connecting-ip",
  "fastly-client-ip",
  "x-proxyuser-ip",
  // The scheme, method and path as a proxy in front would report them (Rack, Traefik and nginx
  // forward-auth, Spring's ForwardedHeaderFilter): an upstream, or its auth service, that trusts
  // them judges another request than the one decided here.
  "front-end-https",
  "x-url-scheme",
]);

/**
 * A header name as CGI, PHP (`$_SERVER['HTTP_X_ORIGINAL_URL']`), IIS and other gateways read it:
 * `-` and `_` are the same there, so `X_Original_URL` is `X-Original-URL` and `X_Forwarded_Host`
 * is `X-Forwarded-Host`. Every stripping decision compares this form, or the agent could send a
 * routing hint (a rewritten path the classifier never judged) or a credential of its own under
 * the underscore spelling.
 */
export function gatewayName(lower: string): string {
  return lower.includes("_") ? lower.replace(/_/g, "-") : lower;
}

/**
 * Prefixes of header families that only a proxy in front of an upstream sets: every
 * `X-Forwarded-*` (Host, Proto, Port, Prefix, Uri, Method, Ssl, Scheme...), `X-Original-*` (URL,
 * URI, Host, Method) and Envoy's own (`x-envoy-original-path`, `x-envoy-external-address`).
 */
const AGENT_STRIPPED_PREFIXES = ["x-forwarded-", "x-original-", "x-envoy-", "proxy-", "x-bulkhead-"];

/** Is the agent's header `lower` (lower case) one that never reaches the upstream, in either spelling? */
export function agentStripped(lower: string): boolean {
  const name = gatewayName(lower);
  return HOP_BY_HOP.has(lower) || HOP_BY_HOP.has(name) || AGENT_STRIPPED.has(name) || AGENT_STRIPPED_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** The preferences that ask Bulkhead (not the upstream) to answer at once (RFC 7240: `wait` goes with them). */
const ASYNC_PREFERENCES = new Set(["respond-async", "wait"]);

/**
 * `Prefer` without Bulkhead's own 202-and-poll preferences, or null when nothing else is left:
 * what the upstream gets, and what an approval is bound to. The rest reaches the upstream and can
 * change what it does (PostgREST's `tx=rollback` makes the request a dry run,
 * `resolution=merge-duplicates` turns an insert into an overwrite), so it is bound like any other
 * header: a grant for a dry run does not release the real thing. `respond-async` and `wait` were
 * forwarded too, so an upstream that honours them ran a request its approval did not cover.
 */
export function boundPreferences(value: string): string | null {
  const kept = value
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "" && !ASYNC_PREFERENCES.has((p.split(/[=;]/)[0] ?? "").trim().toLowerCase()));
  return kept.length > 0 ? kept.join(", ") : null;
}

/** Builds the upstream header list from the agent's headers: strip, then inject the credential. */
export function upstreamHeaders(
  agentHeaders: Record<string, string>,
  connectionTokens: ReadonlySet<string>,
  inject: { name: string; value: string } | null,
  host: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  const injected = inject ? gatewayName(inject.name.toLowerCase()) : null;
  for (const name of Object.keys(agentHeaders)) {
    const value = agentHeaders[name] as string;
    const lower = name.toLowerCase();
    if (agentStripped(lower) || connectionTokens.has(lower) || connectionTokens.has(gatewayName(lower))) continue;
    if (gatewayName(lower) === injected) continue;
    if (lower === "prefer") {
      const kept = boundPreferences(value);
      if (kept !== null) out[lower] = kept;
      continue;
    }
    out[lower] = value;
  }
  out.host = host;
  if (inject) out[inject.name.toLowerCase()] = inject.value;
  return out;
}

/** Header names listed in Connection are hop-by-hop too. */
export function connectionTokens(connection: string | undefined): Set<string> {
  const set = new Set<string>();
  if (!connection) return set;
  // The usual value is one token (`keep-alive`, `close`): no list to split.
  if (!connection.includes(",")) {
    const t = connection.trim().toLowerCase();
    if (t) set.add(t);
    return set;
  }
  for (const token of connection.split(",")) {
    const t = token.trim().toLowerCase();
    if (t) set.add(t);
  }
  return set;
}

/**
 * The request's headers without those its Connection header lists (RFC 9110 §7.6.1: they are for
 * this hop only and are never forwarded). Applied before the request is canonicalised, so that
 * what is judged is what is forwarded: a Content-Type or a method override the agent lists in
 * Connection is gone from the request the classifier reads, as from the one the upstream gets.
 */
export function withoutConnectionListed(headers: Record<string, string>): Record<string, string> {
  const listed = connectionTokens(headers.connection);
  listed.delete("connection");
  if (listed.size === 0 || !Object.keys(headers).some((name) => listed.has(name.toLowerCase()))) return headers;
  const out: Record<string, string> = {};
  for (const name of Object.keys(headers)) if (!listed.has(name.toLowerCase())) out[name] = headers[name] as string;
  return out;
}

/**
 * Response headers passed back to the agent: hop-by-hop removed, and every `x-bulkhead-*`
 * header, since only Bulkhead speaks in that namespace (it sets its own two after this).
 */
export function downstreamHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const tokens = connectionTokens(typeof upstream.connection === "string" ? upstream.connection : undefined);
  const out: Record<string, string | string[]> = {};
  for (const name of Object.keys(upstream)) {
    const value = upstream[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || tokens.has(lower) || lower === "content-length" || lower.startsWith("x-bulkhead-")) continue;
    out[lower] = value;
  }
  return out;
}
