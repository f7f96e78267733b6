import { decode } from "@auth/core/jwt";
import type { AppConfig } from "@/lib/config/app";
import { clientAddress } from "@/lib/http/client-address";
import { sessionCookieName } from "./session-cookie";
import type { SessionOrigin } from "./sessions";

/**
 * What a sign-in request says about the session it opens: the client's address exactly as the
 * sign-in throttle determines it (the dashboard server's peer header; X-Forwarded-For only from
 * BULKHEAD_TRUSTED_PROXIES; lib/http/client-address.ts), its User-Agent, and the token of the
 * session the browser held until now (its session cookie), which the new session replaces.
 */
export async function sessionOriginOf(headers: Headers, app: AppConfig): Promise<SessionOrigin & { previousToken: string | null }> {
  return {
    ip: clientAddress(headers, { peerToken: app.peerToken, trustedProxies: app.trustedProxies }),
    userAgent: headers.get("user-agent"),
    previousToken: await sessionTokenOf(headers, app),
  };
}

function cookies(headers: Headers): Map<string, string> {
  const jar = new Map<string, string>();
  for (const part of (headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return jar;
}

/** The session token (`sid`) in the request's session cookie, or null (no cookie, or one this server did not write). */
export async function sessionTokenOf(headers: Headers, app: AppConfig): Promise<string | null> {
  if (!app.authSecret) return null;
  const name = sessionCookieName(app.secure);
  const jar = cookies(headers);
  // next-auth splits a cookie longer than a browser takes into name.0, name.1, …
  let value = jar.get(name);
  if (value === undefined) {
    const chunks: string[] = [];
    for (let i = 0; jar.has(`${name}.${i}`); i++) chunks.push(jar.get(`${name}.${i}`)!);
    value = chunks.length > 0 ? chunks.join("") : undefined;
  }
  if (!value) return null;
  try {
    const token = await decode({ token: value, secret: app.authSecret, salt: name });
    return typeof token?.sid === "string" ? token.sid : null;
  } catch {
    return null;
  }
}
