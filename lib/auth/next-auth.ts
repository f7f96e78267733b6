import "server-only";
import NextAuth, { type NextAuthConfig } from "next-auth";
import Credentials from "next-auth/providers/credentials";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { authenticateLocal, authenticateOidc } from "./authenticate";
import { createSession, deleteSession, resolveSession } from "./sessions";
import type { Role } from "./roles";

declare module "next-auth" {
  interface Session {
    bulkhead: { userId: string; email: string; name: string | null; role: Role };
  }
}

/**
 * next-auth carries an encrypted cookie whose only meaningful content is `sid`, a random token
 * whose hash is a row in `sessions`. The jwt callback re-reads that row and the user on every
 * request and returns null (signed out) when either is gone, so Postgres is the source of truth
 * for sessions: sign-out, disabling a user and role changes take effect at once. This also lets
 * local accounts (which next-auth only supports with JWT sessions) and OIDC share one model.
 */
function buildConfig(): NextAuthConfig {
  const app = loadAppConfig();
  const db = getDb();
  const secure = app.publicUrl.startsWith("https://");
  const providers: NextAuthConfig["providers"] = [
    Credentials({
      id: "password",
      name: "Email and password",
      credentials: { email: { label: "Email", type: "email" }, password: { label: "Password", type: "password" } },
      authorize: async (credentials) => {
        const userId = await authenticateLocal(db, credentials?.email, credentials?.password);
        return userId ? { id: userId } : null;
      },
    }),
  ];
  if (app.oidc) {
    providers.push({
      id: "oidc",
      name: app.oidc.name,
      type: "oidc",
      issuer: app.oidc.issuer,
      clientId: app.oidc.clientId,
      clientSecret: app.oidc.clientSecret,
      checks: ["pkce", "state", "nonce"],
    });
  }
  return {
    secret: app.authSecret,
    trustHost: true,
    basePath: "/api/auth",
    useSecureCookies: secure,
    session: { strategy: "jwt", maxAge: app.sessionMaxAgeSeconds, updateAge: 0 },
    pages: { signIn: "/login", error: "/login" },
    providers,
    callbacks: {
      async signIn({ account, profile, user }) {
        if (account?.provider === "oidc") {
          const userId = await authenticateOidc(db, {
            provider: "oidc",
            subject: account.providerAccountId,
            email: profile?.email,
            emailVerified: (profile as { email_verified?: boolean } | undefined)?.email_verified,
          });
          if (!userId) return false;
          user.id = userId;
        }
        return Boolean(user.id);
      },
      async jwt({ token, user }) {
        if (user?.id) {
          // A fresh sign-in: open a database session and keep only its token in the cookie.
          const sid = await createSession(db, user.id, app.sessionMaxAgeSeconds);
          await recordAuditEvent(db, { type: "auth.signed_in", actor: { actorType: "user", actorId: user.id }, outcome: "allow" });
          return { sid };
        }
        if (typeof token.sid !== "string") return null;
        const session = await resolveSession(db, token.sid);
        if (!session) return null;
        return { sid: token.sid, bulkhead: session };
      },
      async session({ session, token }) {
        const current = token.bulkhead as { userId: string; email: string; name: string | null; role: Role };
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

export const { handlers, auth, signIn, signOut } = NextAuth(() => buildConfig());
