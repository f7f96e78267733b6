/**
 * Where to go after signing in: the page that sent a signed-out person to the sign-in page. A
 * webhook's link to an approval card (`/approvals/<id>`), a shared audit search or a bookmarked
 * task used to lead, after signing in, to the Agents page, with the held request's minutes running
 * out while the approver looked for it again.
 *
 * Only a path of the dashboard is taken, never another site: it must start with one `/` (not `//`
 * or `/\`, which browsers read as another host), hold no white space, backslash or control
 * character, and not be the sign-in or setup page or the API. next-auth's redirect callback
 * (lib/auth/auth-config.ts) also keeps every redirect on the dashboard's origin.
 */
const PAGE_PATH = /^\/(?![/\\])[^\s\\\u0000-\u001f\u007f]*$/;
const MAX = 2000;

export function safeReturnPath(value: unknown): string | null {
  if (typeof value !== "string" || value.length > MAX || !PAGE_PATH.test(value)) return null;
  const path = value.split(/[?#]/, 1)[0]!;
  if (path === "/" || path === "/login" || path.startsWith("/login/") || path.startsWith("/setup/") || path.startsWith("/api/") || path.startsWith("/_next/")) return null;
  return value;
}

/** The sign-in page, asked to come back to `path` afterwards when it is one (else plain). */
export function signInPath(path: string | null | undefined): string {
  const back = safeReturnPath(path);
  return back === null || back === "/agents" ? "/login" : `/login?next=${encodeURIComponent(back)}`;
}

/** The request header proxy.ts sets to the page requested (path and query), for requirePageActor. */
export const PAGE_HEADER = "x-bulkhead-page";

/** The page a request names, without Next.js's own `_rsc` cache-buster. */
export function requestedPage(url: URL): string {
  const params = new URLSearchParams(url.search);
  params.delete("_rsc");
  const query = params.toString();
  return `${url.pathname}${query ? `?${query}` : ""}`;
}
