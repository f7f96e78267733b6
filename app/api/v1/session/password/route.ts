import { NextResponse } from "next/server";
import { changeOwnPassword, changePasswordInput } from "@/lib/auth/change-password";
import { sessionCookie } from "@/lib/auth/session-cookie";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { clientAddress } from "@/lib/http/client-address";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/**
 * Changes the caller's own password (the current one is required). Every other session ends; this
 * one continues under a new token, whose cookie the answer sets (lib/auth/change-password.ts).
 */
export const POST = apiRoute("read", async ({ actor, request, json }) => {
  const input = await json(changePasswordInput);
  const app = loadAppConfig();
  const address = clientAddress(request.headers, { peerToken: app.peerToken, trustedProxies: app.trustedProxies });
  const { sessionToken, endedSessions } = await changeOwnPassword(getDb(), actor, input, { address, throttle: app.signInThrottle });
  const response = NextResponse.json({ changed: true, endedSessions });
  const cookie = await sessionCookie(app, sessionToken);
  response.cookies.set(cookie.name, cookie.value, cookie.options);
  return response;
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
