import { agentStripped, gatewayName, HOP_BY_HOP } from "@/lib/net/agent-headers";

export { AGENT_STRIPPED, agentStripped, gatewayName, HOP_BY_HOP } from "@/lib/net/agent-headers";

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
