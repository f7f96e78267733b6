import type { Db } from "@/lib/db/client";
import { lesserRole } from "@/lib/apikeys/roles";
import { loadAppConfig } from "@/lib/config/app";
import type { Actor } from "./actor";
import { roleCan, type Permission } from "./roles";
import { isIdle } from "./sessions";

/**
 * Whether an actor captured at the start of a long-lived response (a live stream) may still act
 * as it did, read from the database now: for a session, the session row still exists and has not
 * expired or gone unused past the idle limit (an open stream is not use), its user is not disabled
 * and still has the same role; for an API key, the key is not
 * revoked or expired, its creator is not disabled, and its (capped) role is unchanged. A changed
 * role ends the stream too: the client reconnects and gets what its new role allows. A user actor
 * without a session (tests, CLI) is checked by its user row.
 */
export async function actorStillValid(
  db: Pick<Db, "session" | "user" | "apiKey">,
  actor: Actor,
  permission: Permission,
  now = new Date(),
  idleSeconds = loadAppConfig().sessionIdleSeconds,
  options: { sameSignIn?: boolean } = {},
): Promise<boolean> {
  if (actor.kind === "system") return true;
  if (!roleCan(actor.role, permission)) return false;
  if (actor.kind === "user") {
    if (actor.sessionId) {
      const session = await db.session.findUnique({ where: { id: actor.sessionId }, select: { userId: true, expiresAt: true, lastSeenAt: true, authenticatedAt: true, user: { select: { role: true, disabledAt: true } } } });
      // `sameSignIn` (live streams): a re-authentication since the stream opened rotated the
      // session's token, so the cookie the stream was opened with no longer signs anyone in (a
      // copy of it is signed out at that moment); its open stream ends too. The person's own
      // browser reconnects at once with the new cookie.
      const sameSignIn = !options.sameSignIn || actor.authenticatedAt === undefined || session?.authenticatedAt.getTime() === actor.authenticatedAt;
      return Boolean(session && sameSignIn && session.userId === actor.userId && session.expiresAt > now && !isIdle(session.lastSeenAt, now, idleSeconds) && !session.user.disabledAt && session.user.role === actor.role);
    }
    const user = await db.user.findUnique({ where: { id: actor.userId }, select: { role: true, disabledAt: true } });
    return Boolean(user && !user.disabledAt && user.role === actor.role);
  }
  const key = await db.apiKey.findUnique({
    where: { id: actor.apiKeyId },
    select: { role: true, revokedAt: true, expiresAt: true, createdById: true, createdBy: { select: { role: true, disabledAt: true } } },
  });
  if (!key || key.revokedAt || (key.expiresAt && key.expiresAt <= now)) return false;
  if (!key.createdById) return key.role === actor.role;
  if (!key.createdBy || key.createdBy.disabledAt) return false;
  return lesserRole(key.role, key.createdBy.role) === actor.role;
}
