import type { AppConfig } from "@/lib/config/app";
import type { Db } from "@/lib/db/client";
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from "@/lib/db/errors";
import { clientAddress } from "@/lib/http/client-address";
import { emailSchema } from "@/lib/users/users";
import { throttledError } from "./authenticate";
import { lockedFor, throttleKeys } from "./sign-in-throttle";

function tooMany(retryAfterSeconds: number): Response {
  const error = throttledError(retryAfterSeconds);
  return Response.json(
    { error: "rate_limited", message: error.userMessage, retryAfterSeconds },
    { status: 429, headers: { "Retry-After": String(retryAfterSeconds), "Cache-Control": "no-store" } },
  );
}

/**
 * The email of a sign-in attempt, read as next-auth reads the body (@auth/core's getBody): JSON
 * when the content type says JSON, a form when it says form-urlencoded, nothing otherwise.
 * Reading forms only, the account's lock was not seen here for a JSON attempt: next-auth refused it
 * inside, and the answer said to retry after a second instead of the lock's length.
 */
async function emailOf(request: Request): Promise<string | null> {
  const type = request.headers.get("content-type") ?? "";
  let value: unknown = null;
  try {
    if (type.includes("application/json")) value = ((await request.clone().json()) as { email?: unknown } | null)?.email;
    else if (type.includes("application/x-www-form-urlencoded")) value = new URLSearchParams(await request.clone().text()).get("email");
  } catch {
    // Not valid JSON: next-auth refuses it itself; the address still counts.
  }
  const parsed = emailSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

async function keysOf(request: Request, app: AppConfig) {
  const email = await emailOf(request);
  const address = clientAddress(request.headers, { peerToken: app.peerToken, trustedProxies: app.trustedProxies });
  return throttleKeys({ email, address }, app.signInThrottle);
}

/**
 * next-auth answers a refused password sign-in with a redirect to the sign-in page. For a
 * throttled one, the API answers what HTTP clients understand instead: 429 with Retry-After,
 * before next-auth (and any password hashing) runs. `handle` is next-auth's POST handler.
 */
export async function passwordSignInRoute(request: Request, app: AppConfig, db: Db, handle: (request: Request) => Promise<Response>): Promise<Response> {
  if (!new URL(request.url).pathname.endsWith("/callback/password")) return handle(request);
  const keys = await keysOf(request, app);
  let wait: number;
  try {
    wait = await lockedFor(db, keys);
  } catch (error) {
    // Neither the lock nor the password can be checked: 503, as the API answers (lib/http/route.ts).
    if (!isDatabaseUnavailable(error)) throw error;
    return Response.json({ error: "database_unavailable", message: DATABASE_UNAVAILABLE_MESSAGE }, { status: 503, headers: { "Retry-After": "5", "Cache-Control": "no-store" } });
  }
  if (wait > 0) return tooMany(wait);
  const response = await handle(request);
  // A lock that began between the check above and the password check inside next-auth.
  const location = response.headers.get("location") ?? "";
  if (/[?&]code=throttled(&|$)/.test(location)) {
    const again = await lockedFor(db, keys);
    return tooMany(Math.max(again, 1));
  }
  return response;
}
