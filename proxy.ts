import { NextResponse, type NextRequest } from "next/server";
import { callbackUrlCookieName, withoutUnusableCallbackCookie } from "@/lib/auth/auth-endpoints";
import { PAGE_HEADER, requestedPage } from "@/lib/auth/return-to";
import { loadAppConfig } from "@/lib/config/app";
import { buildCsp, newNonce } from "@/lib/http/csp";
import { checkOriginHeaders, isSafeMethod } from "@/lib/http/csrf";
import { malformedActionRequest } from "@/lib/http/action-request";
import { FORM_BODY_LIMIT_BYTES } from "@/lib/http/form-limit";
import { ACTION_MANIFEST_ENV, readActionIds, unknownActionAnswer } from "@/lib/http/server-actions.mjs";
// React's reply decoder, the one Next.js decodes server actions with (the proxy is built with the
// react-server condition, as Next.js's own server code is).
import * as replyDecoder from "next/dist/compiled/react-server-dom-turbopack/server.node";

/**
 * Runs before every page, server action and route handler (not static assets):
 * - a fresh CSP nonce per response, passed to Next.js in the request's policy header so that
 *   it marks its own scripts with it (pages are rendered per request);
 * - state-changing requests to pages (server actions, form posts) must be same-origin. This is
 *   a first filter, not the boundary: every server action checks its origin itself
 *   (lib/http/action.ts) and route handlers check theirs (lib/http/route.ts; /api/v1 accepts
 *   API keys without an Origin, and next-auth's /api/auth has its own CSRF token), so /api is
 *   left to them;
 * - a server action whose body Next.js cannot decode is refused with 400 before Next.js tries
 *   (lib/http/action-request.ts): its decoder threw and the request ended as a 500;
 * - a next-auth callback-URL cookie that is not an http URL or a path is dropped from the request
 *   and the browser (lib/auth/auth-endpoints.ts): next-auth failed every sign-in on it.
 */
export async function proxy(request: NextRequest): Promise<NextResponse> {
  const app = loadAppConfig();
  const path = request.nextUrl.pathname;
  if (!isSafeMethod(request.method) && !path.startsWith("/api/")) {
    const problem = checkOriginHeaders(request.headers, [new URL(app.publicUrl).origin]);
    if (problem) return refuse(403, "Refused: this request did not come from the dashboard's own pages, so nothing was changed.");
    const malformed = await malformedActionRequest(request, replyDecoder, FORM_BODY_LIMIT_BYTES, buildActionIds());
    if (malformed && "unknownAction" in malformed) return unknownAction(malformed.status);
    if (malformed) return refuse(malformed.status, `Bad request: this server action request ${malformed.reason}, so nothing was run or changed.`);
  }
  const csp = buildCsp({ nonce: newNonce(), secure: app.secure, oidcIssuer: app.oidc?.issuer });
  const requestHeaders = new Headers(request.headers);
  requestHeaders.set("content-security-policy", csp);
  // The page asked for, so that a signed-out visit can come back to it after signing in (lib/auth/return-to.ts).
  requestHeaders.set(PAGE_HEADER, requestedPage(request.nextUrl));
  // A callback-URL cookie next-auth would refuse made every sign-in a server error (lib/auth/auth-endpoints.ts).
  const callbackCookie = callbackUrlCookieName(app.secure);
  const cookie = withoutUnusableCallbackCookie(request.headers.get("cookie"), callbackCookie, new URL(app.publicUrl).origin);
  if (cookie !== null) requestHeaders.set("cookie", cookie);
  const response = NextResponse.next({ request: { headers: requestHeaders } });
  if (cookie !== null) response.cookies.set(callbackCookie, "", { path: "/", maxAge: 0, httpOnly: true, sameSite: "lax", secure: app.secure });
  response.headers.set("content-security-policy", csp);
  if (app.secure) response.headers.set("strict-transport-security", "max-age=31536000");
  return response;
}

/** The server actions of this build (lib/http/server-actions.mjs), read once; null: Next.js answers unknown ones. */
let actionIds: ReadonlySet<string> | null | undefined;
function buildActionIds(): ReadonlySet<string> | null {
  if (actionIds === undefined) actionIds = readActionIds(process.env[ACTION_MANIFEST_ENV]);
  return actionIds;
}

/** A form naming an action this build does not have: answered as Next.js answers it, unlogged. */
function unknownAction(status: 400 | 409): NextResponse {
  const { body, headers } = unknownActionAnswer(status);
  return new NextResponse(body, { status, headers });
}

/** An answer the proxy gives itself: plain text, never cached, sniffed or run as a page. */
function refuse(status: number, text: string): NextResponse {
  return new NextResponse(`${text}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff", "content-security-policy": "default-src 'none'" },
  });
}

export const config = {
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};
