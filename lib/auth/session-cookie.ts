import { encode } from "@auth/core/jwt";
import type { AppConfig } from "@/lib/config/app";

export interface SessionCookie {
  name: string;
  value: string;
  options: { httpOnly: boolean; sameSite: "lax"; path: string; secure: boolean; maxAge: number };
}

/**
 * The session cookie that carries `sessionToken`, exactly as next-auth writes it (an encrypted JWT
 * whose only meaningful claim is `sid`, salted with the cookie's name; lib/auth/auth-config.ts),
 * for the places that give a session a new token themselves: re-authentication
 * (lib/auth/step-up.ts) rotates it so that copies of the old cookie stop working.
 */
export async function sessionCookie(app: AppConfig, sessionToken: string): Promise<SessionCookie> {
  if (!app.authSecret) throw new Error("AUTH_SECRET is not set: the session cookie cannot be written.");
  const name = sessionCookieName(app.secure);
  const value = await encode({ token: { sid: sessionToken }, secret: app.authSecret, salt: name, maxAge: app.sessionMaxAgeSeconds });
  return { name, value, options: { ...authCookieOptions(app.secure), maxAge: app.sessionMaxAgeSeconds } };
}

/** The session cookie's name: `__Host-` prefixed over https (lib/auth/auth-config.ts, authCookies). */
export function sessionCookieName(secure: boolean): string {
  return `${secure ? "__Host-" : ""}authjs.session-token`;
}

/** What every next-auth cookie is set with (authCookies). */
export function authCookieOptions(secure: boolean) {
  return { httpOnly: true, sameSite: "lax" as const, path: "/", secure };
}
