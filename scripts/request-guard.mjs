// Requests the dashboard's server answers itself, before Next.js sees them (scripts/app-server.mjs):
// methods it does not serve (405, below) and paths that do not decode (400).
//
// A path segment whose percent-encoding does not decode (`/agents/%ff`, `/tasks/%E0%A4%A`) makes
// Next.js's production router throw while it decodes a dynamic segment, and the request ends as
// a 500 Internal Server Error, for signed-out visitors too. No page or route of the dashboard
// can mean such a path, so it is refused here as what it is: a malformed request (400), with a
// reason, the same on every path, before any page, route handler or session lookup runs.

/**
 * The methods the dashboard's pages and route handlers serve. Anything else is refused with 405
 * before Next.js sees it: Next.js builds a fetch `Request` for every request, and the fetch
 * standard forbids TRACE and TRACK, so those ended as a 500; the rest have nothing to reach.
 */
export const SERVED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const SERVED = new Set(SERVED_METHODS);

/** Whether the dashboard serves `method` at all. */
export function servedMethod(method) {
  return SERVED.has(method);
}

/** Answers a request whose method the dashboard does not serve: 405 with the methods it does. */
export function refuseMethod(req, res) {
  const api = (req.url ?? "").startsWith("/api/");
  const reason = `the dashboard does not serve ${JSON.stringify(String(req.method).slice(0, 32))} requests`;
  const body = api ? `${JSON.stringify({ error: "method_not_allowed", message: `${reason}.` })}\n` : `Method not allowed: ${reason}.\n`;
  res.writeHead(405, {
    allow: SERVED_METHODS.join(", "),
    "content-type": api ? "application/json" : "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'",
    "x-content-type-options": "nosniff",
  });
  res.end(body);
}

/** Why `url` (a request target as received) cannot be served, or null when its path decodes. */
export function malformedPath(url) {
  if (typeof url !== "string" || url.length === 0) return "the request has no target";
  const query = url.indexOf("?");
  const path = query < 0 ? url : url.slice(0, query);
  if (!path.includes("%")) return null;
  for (const segment of path.split("/")) {
    if (!segment.includes("%")) continue;
    try {
      decodeURIComponent(segment);
    } catch {
      return "the URL's path is not valid percent-encoding (each % must start an escape of UTF-8 bytes)";
    }
  }
  return null;
}

/** Answers a request whose path is malformed: 400, JSON for the API, plain text elsewhere; nothing cached or sniffed. */
export function refuseMalformed(req, res, reason) {
  const api = (req.url ?? "").startsWith("/api/");
  const body = api ? `${JSON.stringify({ error: "invalid_input", message: `The request is not valid: ${reason}.` })}\n` : `Bad request: ${reason}.\n`;
  res.writeHead(400, {
    "content-type": api ? "application/json" : "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'",
    "x-content-type-options": "nosniff",
  });
  res.end(req.method === "HEAD" ? undefined : body);
}
