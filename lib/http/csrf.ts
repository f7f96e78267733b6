/**
 * CSRF defence for everything a session cookie can change: route handlers (lib/http/route.ts),
 * server actions (lib/http/action.ts) and, before either, the dashboard's proxy (proxy.ts). A
 * state-changing request must come from the dashboard's own origin: an `Origin` header naming it,
 * or, where a browser sent no Origin, `Sec-Fetch-Site: same-origin`. A request with neither is
 * refused: browsers send one of them on every POST, so only handcrafted or very old clients
 * omit both, and those are exactly the ones a cookie must not be trusted from.
 */
export function isSafeMethod(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

/**
 * Why the request is not same-origin, or null when it is. `allowedOrigins` lists the dashboard's
 * public origin; an Origin whose host equals the request's Host header also counts (the same
 * server reached as localhost and 127.0.0.1), as Next.js itself allows for server actions.
 */
export function checkOriginHeaders(headers: Headers, allowedOrigins: readonly string[]): string | null {
  const fetchSite = headers.get("sec-fetch-site");
  if (fetchSite && fetchSite !== "same-origin") return `cross-site request (Sec-Fetch-Site: ${fetchSite})`;
  const origin = headers.get("origin");
  if (!origin) {
    if (fetchSite === "same-origin") return null;
    return "missing Origin header";
  }
  if (allowedOrigins.includes(origin)) return null;
  const host = headers.get("host");
  if (host && origin !== "null") {
    try {
      const parsed = new URL(origin);
      if ((parsed.protocol === "http:" || parsed.protocol === "https:") && parsed.host === host.toLowerCase()) return null;
    } catch {
      // Not a URL: refused below.
    }
  }
  return `origin ${origin.slice(0, 100)} is not allowed`;
}

export function checkSameOrigin(request: Request, allowedOrigins: readonly string[]): string | null {
  return checkOriginHeaders(request.headers, [...allowedOrigins, new URL(request.url).origin]);
}

export function checkJsonBody(request: Request): string | null {
  const type = request.headers.get("content-type") ?? "";
  const length = request.headers.get("content-length");
  if (length === "0" || (!type && !length)) return null; // no body at all
  return /^application\/json\s*(;|$)/i.test(type) ? null : "the request body must be application/json";
}
