import { AuthError, CredentialsSignin } from "@auth/core/errors";
import { callbackUrlCookieName } from "./auth-endpoints";
import Credentials from "@auth/core/providers/credentials";
import type { NextAuthConfig } from "next-auth";
import type { AppConfig } from "@/lib/config/app";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { isAppError } from "@/lib/errors/app-error";
import { isDatabaseUnavailable } from "@/lib/db/errors";
import { clientAddress } from "@/lib/http/client-address";
import { authenticateLocal, authenticateOidc } from "./authenticate";
import { authCookieOptions, sessionCookieName } from "./session-cookie";
import { sessionOriginOf } from "./session-origin";
import { deleteSession, openSession, resolveSession, type SessionUser } from "./sessions";

export { authCookieOptions, sessionCookieName };

declare module "next-auth" {
  interface Session {
    bulkhead: SessionUser;
    /** The session could not be checked: the database did not answer (not: signed out). */
    databaseUnavailable?: true;
  }
}

/** A throttled password sign-in; next-auth reports it as `error=CredentialsSignin&code=throttled`. */
export class SignInThrottled extends CredentialsSignin {
  override code = "throttled";
}

/** A sign-in that could not be checked because the database did not answer (`code=unavailable`). */
export class SignInUnavailable extends CredentialsSignin {
  override code = "unavailable";
}

/**
 * Session and sign-in cookies. Over https they carry the `__Host-` prefix, which browsers accept
 * only with Secure, Path=/ and no Domain: a sibling subdomain or a plain-http page on the same
 * host cannot set or overwrite them. A plain-http dashboard (loopback, the default) cannot use
 * the prefix: it needs Secure, and browsers other than Chromium refuse Secure cookies from
 * http://127.0.0.1 (see docs/dashboard-security.md), so there the names are unprefixed and
 * not Secure. All are HttpOnly and SameSite=Lax (the identity provider's redirect back is a
 * cross-site top-level GET that must carry the state and PKCE cookies).
 */
export function authCookies(secure: boolean): NonNullable<NextAuthConfig["cookies"]> {
  const prefix = secure ? "__Host-" : "";
  const options = authCookieOptions(secure);
  const short = { ...options, maxAge: 15 * 60 };
  return {
    sessionToken: { name: sessionCookieName(secure), options },
    callbackUrl: { name: callbackUrlCookieName(secure), options },
    csrfToken: { name: `${prefix}authjs.csrf-token`, options },
    pkceCodeVerifier: { name: `${prefix}authjs.pkce.code_verifier`, options: short },
    state: { name: `${prefix}authjs.state`, options: short },
    nonce: { name: `${prefix}authjs.nonce`, options: short },
  };
}


/** The `auth_time` claim as a Date, when the identity provider sent a plausible one. */
function authTime(profile: unknown): Date | undefined {
  const value = (profile as { auth_time?: unknown } | undefined)?.auth_time;
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? new Date(value * 1000) : undefined;
}

/**
 * next-auth's errors that a client causes, signed out too: a wrong password (or a throttled or
 * unavailable sign-in, its subclasses), a missing or stale CSRF token, state, PKCE or nonce cookie
 * (a tab left open, a form posted twice), an identity provider's refusal or an account it does not
 * link, a path next-auth cannot parse. next-auth logged each with a stack trace, so anyone could
 * fill the dashboard's log at will (as with unknown server action ids, docs/dashboard-security.md).
 * Sign-in failures are recorded in the audit (lib/auth/sign-in-audit.ts) and the client is told;
 * the log keeps what is the server's fault.
 */
const CLIENT_AUTH_ERRORS = new Set([
  "CredentialsSignin",
  "MissingCSRF",
  "InvalidCheck",
  "UnknownAction",
  "AccessDenied",
  "OAuthCallbackError",
  "OAuthAccountNotLinked",
  "AccountNotLinked",
  "Verification",
]);

export function logAuthError(error: Error): void {
  if (error instanceof AuthError && CLIENT_AUTH_ERRORS.has(error.type)) return;
  const name = error instanceof AuthError ? error.type : error.name;
  console.error(`[auth][error] ${name}: ${error.message}`);
  const cause = error.cause as { err?: unknown } | undefined;
  if (cause && typeof cause === "object" && cause.err instanceof Error) console.error("[auth][cause]:", cause.err.stack);
  else if (error.stack) console.error(error.stack.replace(/.*/, "").substring(1));
}

/**
 * next-auth's configuration. The encrypted cookie's only meaningful content is `sid`, a random
 * token whose hash is a row in `sessions`. The jwt callback re-reads that row and the user on
 * every request and returns null (signed out) when either is gone, so Postgres is the source
 * of truth for sessions: sign-out, disabling a user and role changes take effect at once. This
 * also lets local accounts (which next-auth only supports with JWT sessions) and OIDC share one
 * model. Free of Next.js imports, so tests can drive it through @auth/core directly.
 *
 * `request` is the request being answered (lib/auth/next-auth.ts builds the configuration per
 * request): a new session records where it came from (sessionOriginOf), and replaces the session
 * whose cookie the browser sent, in the same transaction.
 */
export function buildAuthConfig(app: AppConfig, db: Db, request?: { headers: Headers }): NextAuthConfig {
  const providers: NextAuthConfig["providers"] = [
    Credentials({
      id: "password",
      name: "Email and password",
      credentials: { email: { label: "Email", type: "email" }, password: { label: "Password", type: "password" } },
      authorize: async (credentials, request) => {
        const address = clientAddress(request.headers, { peerToken: app.peerToken, trustedProxies: app.trustedProxies });
        try {
          const userId = await authenticateLocal(db, credentials?.email, credentials?.password, { address, throttle: app.signInThrottle });
          return userId ? { id: userId } : null;
        } catch (error) {
          if (isAppError(error) && error.code === "RATE_LIMITED") throw new SignInThrottled();
          if (isDatabaseUnavailable(error)) throw new SignInUnavailable();
          throw error;
        }
      },
    }),
  ];
  const oidc = app.oidc;
  if (oidc) {
    providers.push({
      id: "oidc",
      name: oidc.name,
      type: "oidc",
      issuer: oidc.issuer,
      clientId: oidc.clientId,
      clientSecret: oidc.clientSecret,
      checks: ["pkce", "state", "nonce"],
    });
  }
  return {
    secret: app.authSecret,
    trustHost: true,
    basePath: "/api/auth",
    useSecureCookies: app.secure,
    cookies: authCookies(app.secure),
    session: { strategy: "jwt", maxAge: app.sessionMaxAgeSeconds, updateAge: 0 },
    pages: { signIn: "/login", error: "/login" },
    logger: { error: logAuthError },
    providers,
    callbacks: {
      /**
       * next-auth's own rule (a path of the dashboard, or a URL of its origin; anything else is the
       * dashboard), without its throw: a callbackUrl that is no URL at all (`%2F%2Fevil`, a tab
       * before `//evil`) made `new URL` throw there, and a right password was answered "Sign-in is
       * misconfigured on the server", with the error in the log.
       */
      redirect({ url, baseUrl }) {
        if (url.startsWith("/")) return `${baseUrl}${url}`;
        try {
          if (new URL(url).origin === baseUrl) return url;
        } catch {
          // Not a URL: the dashboard.
        }
        return baseUrl;
      },
      async signIn({ account, profile, user }) {
        if (account?.provider === "oidc") {
          if (!oidc) return false;
          const userId = await authenticateOidc(
            db,
            { issuer: oidc.issuer, subject: account.providerAccountId, email: profile?.email, emailVerified: profile?.email_verified },
            app.signInThrottle,
          );
          if (!userId) return false;
          user.id = userId;
        }
        return Boolean(user.id);
      },
      async jwt({ token, user, account, profile }) {
        if (user?.id) {
          // A fresh sign-in: open a database session and keep only its token in the cookie. An
          // identity provider's auth_time says when the person really authenticated there.
          const viaOidc = account?.provider === "oidc";
          const origin = request ? await sessionOriginOf(request.headers, app) : null;
          const opened = await openSession(db, user.id, app.sessionMaxAgeSeconds, {
            authMethod: viaOidc ? "oidc" : "password",
            authenticatedAt: viaOidc ? authTime(profile) : undefined,
            ip: origin?.ip,
            userAgent: origin?.userAgent,
            // A sign-in in a browser that still held a session (an identity-provider step-up, or
            // signing in again) ends that session: the old cookie no longer resolves.
            replacesToken: origin?.previousToken,
          });
          await recordAuditEvent(db, {
            type: "auth.signed_in",
            actor: { actorType: "user", actorId: user.id },
            outcome: "allow",
            data: {
              method: viaOidc ? "oidc" : "password",
              sessionId: opened.sessionId,
              ...(origin?.ip ? { address: origin.ip } : {}),
              ...(opened.replaced ? { replacedSessionId: opened.replaced.id, ...(opened.replaced.userId !== user.id ? { replacedUserId: opened.replaced.userId } : {}) } : {}),
            },
          });
          return { sid: opened.token };
        }
        if (typeof token.sid !== "string") return null;
        let session: SessionUser | null;
        try {
          session = await resolveSession(db, token.sid);
        } catch (error) {
          // A database that does not answer says nothing about the session: the cookie is kept
          // (returning null would sign the person out) and nobody is let in (no `bulkhead`);
          // lib/auth/current.ts answers 503 instead of "sign in".
          if (isDatabaseUnavailable(error)) return { sid: token.sid, databaseUnavailable: true };
          throw error;
        }
        if (!session) return null;
        return { sid: token.sid, bulkhead: session };
      },
      async session({ session, token }) {
        if (token.databaseUnavailable === true) return { ...session, databaseUnavailable: true } as typeof session;
        const current = token.bulkhead as SessionUser;
        return { ...session, user: { ...session.user, email: current.email, name: current.name }, bulkhead: current };
      },
    },
    events: {
      async signOut(message) {
        const token = "token" in message ? message.token : null;
        if (token && typeof token.sid === "string") await deleteSession(db, token.sid);
      },
    },
  };
}
