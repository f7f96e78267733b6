/**
 * Which of an agent's request headers never reach an upstream: shared by the proxy worker (which
 * strips them, proxy-worker/proxy/headers.ts) and the vault (a credential's header template may
 * not set them either, lib/vault/header-template.ts), so the two cannot drift apart.
 */
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

