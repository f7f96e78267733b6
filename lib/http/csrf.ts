/**
 * CSRF defence for cookie-authenticated route handlers: a state-changing request must come from
 * the dashboard's own origin (Origin header, or Sec-Fetch-Site: same-origin) and carry JSON, which
 * a cross-site form cannot send without a CORS preflight that Bulkhead never grants.
 */
export function isSafeMethod(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

export function checkSameOrigin(request: Request, allowedOrigins: readonly string[]): string | null {
  const fetchSite = request.headers.get("sec-fetch-site");
  if (fetchSite && fetchSite !== "same-origin") return `cross-site request (Sec-Fetch-Site: ${fetchSite})`;
  const origin = request.headers.get("origin");
  if (!origin) {
    if (fetchSite === "same-origin") return null;
    return "missing Origin header";
  }
  const requestOrigin = new URL(request.url).origin;
  if (origin === requestOrigin || allowedOrigins.includes(origin)) return null;
  return `origin ${origin} is not allowed`;
}

export function checkJsonBody(request: Request): string | null {
  const type = request.headers.get("content-type") ?? "";
  const length = request.headers.get("content-length");
  if (length === "0" || (!type && !length)) return null; // no body at all
  return /^application\/json\s*(;|$)/i.test(type) ? null : "the request body must be application/json";
}
