import { createHash, randomBytes } from "node:crypto";
import type { Db } from "@/lib/db/client";
import type { Role } from "./roles";

/**
 * Dashboard sessions live in Postgres. The browser's (encrypted) session cookie carries only a
 * random session token; the table keeps its SHA-256. Every request re-reads the row and the
 * user, so sign-out, disabling a user and role changes take effect on the next request.
 */
export function hashSessionToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export type AuthMethod = "password" | "oidc";

export interface SessionUser {
  userId: string;
  email: string;
  name: string | null;
  role: Role;
  sessionId: string;
  /** When the person last proved who they are in this session (epoch ms; step-up compares it). */
  authenticatedAt: number;
  authMethod: AuthMethod;
}

export async function createSession(
  db: Db,
  userId: string,
  maxAgeSeconds: number,
  meta: { userAgent?: string | null; ip?: string | null; authMethod?: AuthMethod; authenticatedAt?: Date } = {},
): Promise<string> {
  const token = newSessionToken();
  const now = new Date();
  // An identity provider's auth_time can be older than now (single sign-on), never newer.
  const authenticatedAt = meta.authenticatedAt && meta.authenticatedAt < now ? meta.authenticatedAt : now;
  await db.$transaction([
    db.session.create({
      data: {
        tokenHash: hashSessionToken(token),
        userId,
        expiresAt: new Date(now.getTime() + maxAgeSeconds * 1000),
        authenticatedAt,
        authMethod: meta.authMethod ?? "password",
        userAgent: meta.userAgent?.slice(0, 300) ?? null,
        ip: meta.ip?.slice(0, 64) ?? null,
      },
    }),
    db.user.update({ where: { id: userId }, data: { lastLoginAt: now } }),
  ]);
  return token;
}

/** The session's user, or null when the session is gone, expired, or its user is disabled. */
export async function resolveSession(db: Db, token: string, now = new Date()): Promise<SessionUser | null> {
  const session = await db.session.findUnique({
    where: { tokenHash: hashSessionToken(token) },
    select: {
      id: true,
      expiresAt: true,
      lastSeenAt: true,
      authenticatedAt: true,
      authMethod: true,
      user: { select: { id: true, email: true, name: true, role: true, disabledAt: true } },
    },
  });
  if (!session) return null;
  if (session.expiresAt <= now || session.user.disabledAt) {
    await db.session.delete({ where: { id: session.id } }).catch(() => undefined);
    return null;
  }
  // Throttled so that reading a page does not write on every request.
  if (now.getTime() - session.lastSeenAt.getTime() > 60_000) {
    await db.session.update({ where: { id: session.id }, data: { lastSeenAt: now } }).catch(() => undefined);
  }
  const { user } = session;
  return {
    userId: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    sessionId: session.id,
    authenticatedAt: session.authenticatedAt.getTime(),
    authMethod: session.authMethod === "oidc" ? "oidc" : "password",
  };
}

/** A new random session token: what the cookie carries; the table keeps its hash. */
export function newSessionToken(): string {
  return randomBytes(32).toString("base64url");
}

export async function deleteSession(db: Db, token: string): Promise<void> {
  await db.session.deleteMany({ where: { tokenHash: hashSessionToken(token) } });
}
