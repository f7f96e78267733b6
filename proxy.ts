import { NextResponse, type NextRequest } from "next/server";
import { loadAppConfig } from "@/lib/config/app";
import { buildCsp, newNonce } from "@/lib/http/csp";
import { checkOriginHeaders, isSafeMethod } from "@/lib/http/csrf";

/**
 * Runs before every page, server action and route handler (not static assets):
 * - a fresh CSP nonce per response, passed to Next.js in the request's policy header so that
 *   it marks its own scripts with it (pages are rendered per request);
 * - state-changing requests to pages (server actions, form posts) must be same-origin. This is
 *   a first filter, not the boundary: every server action checks its origin itself
 *   (lib/http/action.ts) and route handlers check theirs (lib/http/route.ts; /api/v1 accepts
 *   API keys without an Origin, and next-auth's /api/auth has its own CSRF token), so /api is
 *   left to them.
 */
export function proxy(request: NextRequest): NextResponse {
  const app = loadAppConfig();
  const path = request.nextUrl.pathname;
  if (!isSafeMethod(request.method) && !path.startsWith("/api/")) {
    const problem = checkOriginHeaders(request.headers, [new URL(app.publicUrl).origin]);
    if (problem) {
      return new NextResponse("Refused: this request did not come from the dashboard's own pages, so nothing was changed.\n", {
        status: 403,
        headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
      });
    }
  }
  const csp = buildCsp({ nonce: newNonce(), secure: app.secure, oidcIssuer: app.oidc?.issuer });
  const requestHeaders = new Headers(request.headers);
  requestHeaders.set("content-security-policy", csp);
  const response = NextResponse.next({ request: { headers: requestHeaders } });
  response.headers.set("content-security-policy", csp);
  if (app.secure) response.headers.set("strict-transport-security", "max-age=31536000");
  return response;
}

export const config = {
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};
