import "server-only";
import { Auth, setEnvDefaults } from "@auth/core";
import NextAuth from "next-auth";
import { headers } from "next/headers";
import { loadAppConfig, type AppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { buildAuthConfig } from "./auth-config";

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
  setEnvDefaults(process.env, config, true);
  const { pathname, search } = new URL(request.url);
  const init: RequestInit & { duplex?: "half" } = { method: request.method, headers: request.headers, body: request.body, duplex: "half" };
  const response = await Auth(new Request(`${new URL(app.publicUrl).origin}${pathname}${search}`, init), config);
  // Its sign-out page carries a CSRF token, its redirects set cookies: no cache keeps any answer.
  if (response.headers.has("cache-control")) return response;
  // (A redirect's headers are immutable: the answer is copied.)
  const headers = new Headers(response.headers);
  headers.set("Cache-Control", "no-store");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
