import "server-only";
import { Auth, setEnvDefaults } from "@auth/core";
import NextAuth from "next-auth";
import { headers } from "next/headers";
import { loadAppConfig, type AppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { buildAuthConfig } from "./auth-config";
import { authEndpointRefusal, isUsableCallbackUrl } from "./auth-endpoints";

/**
 * The request's headers: next-auth hands route handlers' requests to the configuration, but not
 * those of server actions and pages (`signIn()`, `auth()`), which are read from Next.js instead.
 */
async function incomingHeaders(request: { headers: Headers } | undefined): Promise<{ headers: Headers } | undefined> {
  if (request) return request;
  try {
    return { headers: new Headers(await headers()) };
  } catch {
    // Outside a request (nothing signs in there).
    return undefined;
  }
}

/**
 * The origin of every URL next-auth makes: the identity provider's `redirect_uri`, the redirect
 * after signing in or out (and so where a `callbackUrl` may point), the URLs
 * `/api/auth/providers` lists. next-auth takes it from `AUTH_URL`, and without it from the request:
 * `X-Forwarded-Host` and `X-Forwarded-Proto` as the client sent them. So a client chose the scheme
 * (and, where no proxy overwrote it, the host) of the redirect it was sent after signing in.
 * Pinned to `BULKHEAD_PUBLIC_URL`, every such URL is the dashboard's own, whatever the request's
 * `Host`, `X-Forwarded-*` or `Forwarded` headers say. next-auth reads it from the environment when
 * it builds each URL (signIn, signOut, auth()), after calling the configuration below.
 */
function pinAuthUrl(app: AppConfig): AppConfig {
  process.env.AUTH_URL = app.publicUrl;
  return app;
}

/** next-auth bound to this process's configuration and database (see lib/auth/auth-config.ts), per request. */
export const { auth, signIn, signOut } = NextAuth(async (request) => buildAuthConfig(pinAuthUrl(loadAppConfig()), getDb(), await incomingHeaders(request)));

/**
 * next-auth's endpoints (`/api/auth/*`: sign-in, the identity provider's callback, sign-out,
 * providers, CSRF token), answered on the request as addressed to the dashboard's public URL.
 * next-auth's own route handler does not use `AUTH_URL` for these: the request it rebuilds is
 * Next's, whose URL is Next's idea of the dashboard's address (loopback always spelled
 * `localhost`, the scheme from a client's `X-Forwarded-Proto`). So the sign-in endpoint sent a
 * browser on `http://127.0.0.1:3000` to `http://localhost:3000` after signing in, where its new
 * cookie is not sent, or to `https://` when the client asked, and the identity provider's callback
 * named a `redirect_uri` other than the one the sign-in had sent. Here only the path and query
 * are the request's.
 */
export async function authRoute(request: Request): Promise<Response> {
  const app = pinAuthUrl(loadAppConfig());
  const config = buildAuthConfig(app, getDb(), request);
  const url = new URL(request.url);
  // A request next-auth has no endpoint for is answered here (lib/auth/auth-endpoints.ts).
  // A provider's own id is in its options (Credentials({ id: "password" }) is "credentials" until next-auth merges them).
  const providers = config.providers
    .map((p) => (typeof p === "function" ? p() : p))
    .map((p) => ({ id: String((p as { options?: { id?: unknown } }).options?.id ?? p.id), type: String(p.type) }));
  const refusal = authEndpointRefusal(request.method, url.pathname, providers);
  if (refusal) {
    return Response.json(
      { error: refusal.error, message: refusal.message },
      { status: refusal.status, headers: { "Cache-Control": "no-store", ...(refusal.allow ? { Allow: refusal.allow.join(", ") } : {}) } },
    );
  }
  setEnvDefaults(process.env, config, true);
  const origin = new URL(app.publicUrl).origin;
  // A callbackUrl next-auth would refuse as a fault of the server (a 500) leads back to the dashboard instead.
  const callbackUrls = url.searchParams.getAll("callbackUrl");
  if (callbackUrls.some((value) => !isUsableCallbackUrl(value, origin))) {
    url.searchParams.delete("callbackUrl");
    for (const value of callbackUrls) if (isUsableCallbackUrl(value, origin)) url.searchParams.append("callbackUrl", value);
  }
  // (An unusable callback-URL cookie never gets this far: proxy.ts drops it from every request.)
  const init: RequestInit & { duplex?: "half" } = { method: request.method, headers: request.headers, body: request.body, duplex: "half" };
  const response = await Auth(new Request(`${origin}${url.pathname}${url.search}`, init), config);
  // Its sign-out page carries a CSRF token, its redirects set cookies: no cache keeps any answer.
  if (response.headers.has("cache-control")) return response;
  // (A redirect's headers are immutable: the answer is copied.)
  const headers = new Headers(response.headers);
  headers.set("Cache-Control", "no-store");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
