import { NextResponse } from "next/server";
import { sessionCookie } from "@/lib/auth/session-cookie";
import { reauthenticateInput, reauthenticateWithPassword } from "@/lib/auth/step-up";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { clientAddress } from "@/lib/http/client-address";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/**
 * Step-up for session clients of the API; the dashboard's dialog uses the server action. The
 * session's token is rotated (lib/auth/step-up.ts): the answer sets the new session cookie, and
 * the cookie the request came with no longer works.
 */
export const POST = apiRoute("read", async ({ actor, request, json }) => {
  const { password } = await json(reauthenticateInput);
  const app = loadAppConfig();
  const address = clientAddress(request.headers, { peerToken: app.peerToken, trustedProxies: app.trustedProxies });
  const { authenticatedAt, sessionToken } = await reauthenticateWithPassword(getDb(), actor, password, { address, throttle: app.signInThrottle });
  const response = NextResponse.json({ authenticatedAt: authenticatedAt.toISOString() });
  const cookie = await sessionCookie(app, sessionToken);
  response.cookies.set(cookie.name, cookie.value, cookie.options);
  return response;
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
