import { createHash, randomBytes } from "node:crypto";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { loadAppConfig } from "@/lib/config/app";
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

/** Where a session was opened from: the client's address as the sign-in throttle sees it, and its User-Agent. */
export interface SessionOrigin {
  ip?: string | null;
  userAgent?: string | null;
}

export interface SessionMeta extends SessionOrigin {
  authMethod?: AuthMethod;
  authenticatedAt?: Date;
  /**
   * The token of the session this browser held until now (its cookie came with the sign-in): a
   * new sign-in in the same browser, an identity-provider re-authentication included, replaces
   * that session, so its row is deleted in the same transaction and no copy of the old cookie
   * keeps working until it expires.
   */
  replacesToken?: string | null;
  /** The idle limit the person's ended sessions are judged by (the dashboard's setting by default). */
  idleSeconds?: number;
}

/** At most this many of a person's ended sessions are swept by one sign-in (the next takes the rest). */
export const SESSION_SWEEP_LIMIT = 100;

export async function createSession(db: Db, userId: string, maxAgeSeconds: number, meta: SessionMeta = {}): Promise<string> {
  return (await openSession(db, userId, maxAgeSeconds, meta)).token;
}

/** Opens a session; `replaced` is the session of `meta.replacesToken` that was deleted with it, if it was still there. */
export async function openSession(
  db: Db,
  userId: string,
  maxAgeSeconds: number,
  meta: SessionMeta = {},
): Promise<{ token: string; sessionId: string; replaced: { id: string; userId: string } | null }> {
  const token = newSessionToken();
  const now = new Date();
  // An identity provider's auth_time can be older than now (single sign-on), never newer.
  const authenticatedAt = meta.authenticatedAt && meta.authenticatedAt < now ? meta.authenticatedAt : now;
  return db.$transaction(async (tx) => {
    let replaced: { id: string; userId: string } | null = null;
    if (meta.replacesToken) {
      const [row] = await tx.session.findMany({ where: { tokenHash: hashSessionToken(meta.replacesToken) }, select: { id: true, userId: true } });
      if (row && (await tx.session.deleteMany({ where: { id: row.id } })).count === 1) replaced = row;
    }
    await sweepEndedSessions(tx, userId, now, meta.idleSeconds ?? loadAppConfig().sessionIdleSeconds);
    const created = await tx.session.create({
      data: {
        tokenHash: hashSessionToken(token),
        userId,
        expiresAt: new Date(now.getTime() + maxAgeSeconds * 1000),
        lastSeenAt: now,
        authenticatedAt,
        authMethod: meta.authMethod ?? "password",
        userAgent: meta.userAgent?.slice(0, 300) || null,
        ip: meta.ip?.slice(0, 64) || null,
      },
      select: { id: true },
    });
    await tx.user.update({ where: { id: userId }, data: { lastLoginAt: now } });
    return { token, sessionId: created.id, replaced };
  });
}

/**
 * Deletes the person's sessions that have ended (past their lifetime or idle limit) but were never
 * presented again, which is how most sessions end (a closed browser): without this their rows
 * stayed for good, one per sign-in. Each is audited as `auth.session_expired`, as when a request
 * finds one ended; `swept` says it was found at a sign-in.
 */
async function sweepEndedSessions(tx: Pick<Db, "session" | "auditEvent" | "$queryRaw">, userId: string, now: Date, idleSeconds: number): Promise<void> {
  const idleSince = new Date(now.getTime() - idleSeconds * 1000);
  const ended = await tx.session.findMany({
    where: { userId, OR: [{ expiresAt: { lte: now } }, { lastSeenAt: { lt: idleSince } }] },
    select: { id: true, expiresAt: true, lastSeenAt: true },
    orderBy: { lastSeenAt: "asc" },
    take: SESSION_SWEEP_LIMIT,
  });
  if (ended.length === 0) return;
  // Only what this statement deleted is audited: a request that found one of them ended meanwhile audited it itself.
  const ids = ended.map((e) => e.id);
  const deleted = new Set((await tx.$queryRaw<Array<{ id: string }>>`DELETE FROM sessions WHERE id = ANY(${ids}::uuid[]) RETURNING id::text AS id`).map((r) => r.id));
  for (const session of ended) {
    if (!deleted.has(session.id)) continue;
    const ending = session.expiresAt <= now ? "lifetime" : "idle";
    await recordAuditEvent(tx, {
      type: "auth.session_expired",
      actor: { actorType: "user", actorId: userId },
      outcome: "deny",
      reason: ending === "idle" ? `unused for more than ${Math.round(idleSeconds / 60)} minutes` : "its lifetime ended",
      data: { sessionId: session.id, ending, swept: true, lastSeenAt: session.lastSeenAt.toISOString(), expiresAt: session.expiresAt.toISOString() },
    });
  }
}

/** lastSeenAt is written at most this often, so it can lag the session's last request by up to this much. */
export const LAST_SEEN_RESOLUTION_MS = 60_000;

/** Whether a session last seen at `lastSeenAt` has been unused for longer than the idle limit. */
export function isIdle(lastSeenAt: Date, now: Date, idleSeconds: number): boolean {
  return now.getTime() - lastSeenAt.getTime() > idleSeconds * 1000;
}

/**
 * The session's user, or null when the session is gone, has ended (its absolute lifetime or its
 * idle limit), or its user is disabled. An ended session's row is deleted, and the ending audited
 * once (by whichever request deleted it).
 *
 * The idle limit is compared with lastSeenAt, which is written at most once a minute (reading a
 * page must not write on every request): a session can end up to a minute before `idleSeconds`
 * have passed since its last request, never after.
 */
export async function resolveSession(db: Db, token: string, now = new Date(), idleSeconds = loadAppConfig().sessionIdleSeconds): Promise<SessionUser | null> {
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
  const ending = session.expiresAt <= now ? "lifetime" : isIdle(session.lastSeenAt, now, idleSeconds) ? "idle" : null;
  if (ending || session.user.disabledAt) {
    await db
      .$transaction(async (tx) => {
        const { count } = await tx.session.deleteMany({ where: { id: session.id } });
        // Disabling a user deletes their sessions itself and is audited there.
        if (count === 1 && ending && !session.user.disabledAt) {
          await recordAuditEvent(tx, {
            type: "auth.session_expired",
            actor: { actorType: "user", actorId: session.user.id },
            outcome: "deny",
            reason: ending === "idle" ? `unused for more than ${Math.round(idleSeconds / 60)} minutes` : "its lifetime ended",
            data: { sessionId: session.id, ending, lastSeenAt: session.lastSeenAt.toISOString(), expiresAt: session.expiresAt.toISOString() },
          });
        }
      })
      .catch(() => undefined);
    return null;
  }
  // Throttled so that reading a page does not write on every request.
  if (now.getTime() - session.lastSeenAt.getTime() > LAST_SEEN_RESOLUTION_MS) {
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
