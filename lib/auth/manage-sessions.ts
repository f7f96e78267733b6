import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { loadAppConfig } from "@/lib/config/app";
import { AppError } from "@/lib/errors/app-error";
import { assertCan, type Actor } from "./actor";

/**
 * A person's own dashboard sessions: listed (where each came from, when it was last used, which one
 * is this one) and ended, one at a time or all but the current one; and an admin ending every
 * session of another user. Ownership is part of every query's `where`, so another person's
 * session id is "not found", never "forbidden". Every ending is audited.
 */
export interface SessionView {
  id: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  authenticatedAt: Date;
  authMethod: "password" | "oidc";
  ip: string | null;
  userAgent: string | null;
  current: boolean;
}

export const sessionIdSchema = z.uuid();

type PersonActor = Actor & { kind: "user" };

/** Only a signed-in person has sessions of their own; an API key or the CLI does not. */
function person(actor: Actor, what: string): PersonActor {
  if (actor.kind !== "user") {
    throw new AppError("FORBIDDEN", `Only a signed-in person can ${what}.`, { userMessage: `Only a signed-in person can ${what}; API keys and the CLI have no dashboard sessions.` });
  }
  return actor;
}

/** The most sessions listed at once (a person rarely has more than a few; "sign out everywhere else" ends them all). */
export const SESSIONS_LISTED = 200;

/**
 * The actor's live sessions (not past their lifetime or idle limit), most recently used first: at
 * most SESSIONS_LISTED of them, and how many there are in all, so a list that stops short says so.
 */
export async function ownSessions(db: Db, actor: Actor, now = new Date(), idleSeconds = loadAppConfig().sessionIdleSeconds): Promise<{ sessions: SessionView[]; total: number }> {
  const me = person(actor, "list their sessions");
  const where = { userId: me.userId, expiresAt: { gt: now }, lastSeenAt: { gte: new Date(now.getTime() - idleSeconds * 1000) } };
  const [rows, total] = await Promise.all([
    db.session.findMany({
      where,
      orderBy: [{ lastSeenAt: "desc" }, { createdAt: "desc" }],
      select: { id: true, createdAt: true, lastSeenAt: true, expiresAt: true, authenticatedAt: true, authMethod: true, ip: true, userAgent: true },
      take: SESSIONS_LISTED,
    }),
    db.session.count({ where }),
  ]);
  const sessions = rows.map((r): SessionView => ({ ...r, authMethod: r.authMethod === "oidc" ? "oidc" : "password", current: r.id === me.sessionId }));
  return { sessions, total: Math.max(total, sessions.length) };
}

/** The actor's live sessions, most recently used first (at most SESSIONS_LISTED). */
export async function listOwnSessions(db: Db, actor: Actor, now = new Date(), idleSeconds = loadAppConfig().sessionIdleSeconds): Promise<SessionView[]> {
  return (await ownSessions(db, actor, now, idleSeconds)).sessions;
}

/** Ends one of the actor's own sessions (the current one too: that is signing out). Another person's id is NOT_FOUND. */
export async function endOwnSession(db: Db, actor: Actor, sessionId: string): Promise<{ id: string; current: boolean }> {
  const me = person(actor, "end their sessions");
  const parsed = sessionIdSchema.safeParse(sessionId);
  if (!parsed.success) throw new AppError("NOT_FOUND", "No such session.");
  return db.$transaction(async (tx) => {
    const { count } = await tx.session.deleteMany({ where: { id: parsed.data, userId: me.userId } });
    if (count !== 1) throw new AppError("NOT_FOUND", "No such session.");
    const current = parsed.data === me.sessionId;
    await recordAuditEvent(tx, { type: "auth.session_ended", actor, data: { sessionId: parsed.data, userId: me.userId, current } });
    return { id: parsed.data, current };
  });
}

/** "Sign out everywhere else": every session of the actor but the one making the request. */
export async function endOtherSessions(db: Db, actor: Actor): Promise<{ ended: number }> {
  const me = person(actor, "end their other sessions");
  if (!me.sessionId) throw new AppError("FORBIDDEN", "No current session to keep.", { userMessage: "Only a dashboard session can sign out its other sessions." });
  return db.$transaction(async (tx) => {
    const others = await tx.session.findMany({ where: { userId: me.userId, id: { not: me.sessionId } }, select: { id: true } });
    const { count } = await tx.session.deleteMany({ where: { id: { in: others.map((o) => o.id) }, userId: me.userId } });
    await recordAuditEvent(tx, { type: "auth.other_sessions_ended", actor, data: { userId: me.userId, keptSessionId: me.sessionId!, ended: count, sessionIds: others.map((o) => o.id) } });
    return { ended: count };
  });
}

/** An admin (or the CLI) ends every session of a user: their next request is signed out. Audited even when there were none. */
export async function endUserSessions(db: Db, actor: Actor, userId: string): Promise<{ ended: number; email: string }> {
  assertCan(actor, "users:write");
  if (!z.uuid().safeParse(userId).success) throw new AppError("NOT_FOUND", "No such user.");
  return db.$transaction(async (tx) => {
    const user = await tx.user.findUnique({ where: { id: userId }, select: { id: true, email: true } });
    if (!user) throw new AppError("NOT_FOUND", "No such user.");
    const { count } = await tx.session.deleteMany({ where: { userId } });
    await recordAuditEvent(tx, { type: "user.sessions_ended", actor, data: { userId, email: user.email, ended: count } });
    return { ended: count, email: user.email };
  });
}
