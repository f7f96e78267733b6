/**
 * What next-auth's endpoints (`/api/auth/*`) are asked that they have no answer for, decided
 * before next-auth sees the request (lib/auth/next-auth.ts). Free of Next.js and next-auth, so
 * unit tests can table it.
 *
 * next-auth answered every such request, signed out too, as a fault of the server: a `callbackUrl`
 * query parameter (or `authjs.callback-url` cookie) that is not an http URL (`?callbackUrl=foo:bar`)
 * made `/api/auth/session`, `/csrf` and `/providers` a **500** "There was a problem with the server
 * configuration", and sign-in and sign-out links a redirect to "Sign-in is misconfigured on the
 * server"; so did a provider this dashboard does not have (`/api/auth/signin/oidc` without OIDC,
 * `/api/auth/callback/credentials`), the password provider's callback by GET, and endpoints of
 * providers it never configures (`/api/auth/verify-request`, `/api/auth/webauthn-options/x`).
 * Each one also wrote an error with a stack trace to the log. Now: a callbackUrl that is not an
 * http URL is dropped (next-auth then returns to the dashboard, as it does for a foreign one; the
 * cookie by proxy.ts, a posted one by the redirect callback in lib/auth/auth-config.ts), and the
 * rest are a JSON 404 or 405 in the API's error shape, as any other path under `/api/` is.
 */

export interface AuthProvider {
  id: string;
  type: string;
}

export interface AuthEndpointRefusal {
  status: 404 | 405;
  error: "not_found" | "method_not_allowed";
  message: string;
  /** The methods the endpoint does answer (a 405's `Allow`). */
  allow?: string[];
}

type ProviderRule = "none" | "optional" | "required";

/** The endpoints next-auth serves for a dashboard with password and OIDC sign-in, by method. */
const ENDPOINTS: Record<string, Partial<Record<"GET" | "POST", ProviderRule>>> = {
  csrf: { GET: "none" },
  providers: { GET: "none" },
  session: { GET: "none", POST: "none" },
  // next-auth renders no page of its own for a provider (GET /signin/<provider> is "Unsupported action").
  signin: { GET: "none", POST: "optional" },
  signout: { GET: "none", POST: "none" },
  error: { GET: "none" },
  callback: { GET: "required", POST: "required" },
};

/** Providers whose sign-in comes back by a redirect (GET); a password sign-in is only ever posted. */
const REDIRECT_PROVIDER_TYPES = new Set(["oidc", "oauth"]);

const BASE = "/api/auth";

function notFound(message: string): AuthEndpointRefusal {
  return { status: 404, error: "not_found", message };
}

function notAllowed(method: string, what: string, allow: string[]): AuthEndpointRefusal {
  return { status: 405, error: "method_not_allowed", message: `${what} does not answer ${method.slice(0, 20)}; it answers ${allow.join(" and ")}.`, allow };
}

/**
 * Why next-auth has no endpoint for this request, or null when it has one. The path is read as
 * next-auth reads it (segments after `/api/auth`, empty ones skipped), never echoed back.
 */
export function authEndpointRefusal(method: string, pathname: string, providers: readonly AuthProvider[]): AuthEndpointRefusal | null {
  if (!pathname.startsWith(`${BASE}/`) && pathname !== BASE) return notFound("There is no sign-in endpoint at this path.");
  const segments = pathname.slice(BASE.length).split("/").filter(Boolean);
  const [action, providerId] = segments;
  const endpoint = action !== undefined && Object.hasOwn(ENDPOINTS, action) ? ENDPOINTS[action]! : undefined;
  if (!endpoint || segments.length > 2) return notFound("There is no sign-in endpoint at this path.");
  const allow = Object.keys(endpoint);
  const rule = endpoint[method as "GET" | "POST"];
  if (!rule) return notAllowed(method, `/api/auth/${action}`, allow);
  if (providerId === undefined) {
    return rule === "required" ? notFound(`/api/auth/${action} needs a sign-in method: /api/auth/${action}/<provider>, one of ${providers.map((p) => p.id).join(", ")}.`) : null;
  }
  if (rule === "none") return notFound("There is no sign-in endpoint at this path.");
  const provider = providers.find((p) => p.id === providerId);
  if (!provider) return notFound(`This dashboard has no such sign-in method; it has ${providers.map((p) => p.id).join(", ")}.`);
  if (action === "callback" && method === "GET" && !REDIRECT_PROVIDER_TYPES.has(provider.type)) {
    return notAllowed(method, `The ${provider.id} sign-in`, ["POST"]);
  }
  return null;
}

/**
 * Whether next-auth takes `value` for a callback URL: an http(s) URL, or a path (read against
 * the dashboard's origin). Anything else it refuses as a configuration error of the server
 * (`InvalidCallbackUrl`), for the whole request: the mirror of @auth/core's own check.
 */
export function isUsableCallbackUrl(value: string, origin: string): boolean {
  try {
    return /^https?:$/.test(new URL(value, value.startsWith("/") ? origin : undefined).protocol);
  } catch {
    return false;
  }
}

/** The name of next-auth's callback-URL cookie (`__Host-` over https, lib/auth/auth-config.ts). */
export function callbackUrlCookieName(secure: boolean): string {
  return `${secure ? "__Host-" : ""}authjs.callback-url`;
}

/**
 * The Cookie header without a callback-URL cookie next-auth would refuse, or null when there is
 * none to drop. next-auth checks that cookie on every request to its endpoints and on every
 * sign-in, and took a bad one for a fault of the server: every answer of `/api/auth/*` a 500, the
 * sign-in form "a problem with the server configuration", until the cookie expired. On plain http
 * the cookie has no `__Host-` prefix, so any program on another port of the same host can set it
 * (docs/dashboard-security.md). proxy.ts drops it from every request and tells the browser to.
 */
export function withoutUnusableCallbackCookie(header: string | null, name: string, origin: string): string | null {
  if (!header) return null;
  const parts = header.split(";");
  const kept = parts.filter((part) => {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) return true;
    let value = part.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      return false;
    }
    return isUsableCallbackUrl(value, origin);
  });
  return kept.length === parts.length ? null : kept.join(";");
}
