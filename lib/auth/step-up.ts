import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { loadAppConfig } from "@/lib/config/app";
import { AppError } from "@/lib/errors/app-error";
import type { Actor } from "./actor";
import { checkPasswordAttempt, type PasswordAttemptContext } from "./authenticate";
import { verifyPassword } from "./password";
import { hashSessionToken, newSessionToken } from "./sessions";

/**
 * Step-up: a dangerous change (vault credentials, a policy that widens what runs without a
 * human, API keys, roles, service descriptors) needs the person to have proved who they are
 * recently, not just to hold a session cookie, which a thief may have copied. "Recently" is
 * BULKHEAD_STEP_UP_MINUTES (5 by default) since sign-in or the last re-authentication in this
 * session (password, or the identity provider with prompt=login).
 *
 * API keys cannot re-authenticate; one whose role allows the change is exempt, and the change's
 * audit event says so. The CLI acts as the system (whoever runs it already holds the server).
 * Domain functions call `requireStepUp` themselves, after checking the role and the input, so
 * every way in (page, route handler, CLI) gets the same rule.
 */
export type StepUpEvidence =
  | { method: "password" | "oidc"; authenticatedAt: string }
  | { exempt: "api_key" | "system" };

export function stepUpMaxAgeSeconds(): number {
  return loadAppConfig().stepUpMaxAgeSeconds;
}

/** True when the actor may make a dangerous change now without re-authenticating. */
export function isFresh(actor: Actor, now = Date.now(), maxAgeSeconds = stepUpMaxAgeSeconds()): boolean {
  if (actor.kind !== "user") return true;
  return actor.authenticatedAt !== undefined && now - actor.authenticatedAt <= maxAgeSeconds * 1000;
}

/** Throws STEP_UP_REQUIRED unless the actor authenticated recently; returns what the audit event should record. */
export function requireStepUp(actor: Actor, what: string, now = Date.now(), maxAgeSeconds = stepUpMaxAgeSeconds()): StepUpEvidence {
  if (actor.kind === "api_key") return { exempt: "api_key" };
  if (actor.kind === "system") return { exempt: "system" };
  if (!isFresh(actor, now, maxAgeSeconds)) {
    const minutes = Math.round((maxAgeSeconds / 60) * 10) / 10;
    throw new AppError("STEP_UP_REQUIRED", `Re-authentication required to ${what}.`, {
      userMessage: `Confirm it is you to ${what}: your last sign-in is more than ${minutes} minute${minutes === 1 ? "" : "s"} old.`,
      details: { stepUp: { maxAgeSeconds, method: actor.authMethod ?? "password" } },
    });
  }
  return { method: actor.authMethod ?? "password", authenticatedAt: new Date(actor.authenticatedAt!).toISOString() };
}

export const reauthenticateInput = z.object({ password: z.string({ error: "Enter your password." }).min(1, "Enter your password.").max(1024, "A password is at most 1024 characters.").meta({ writeOnly: true, format: "password" }) });

/**
 * Re-authenticates the actor's session with its password: throttled and audited like a sign-in
 * (the same per-account and per-address limits, so a stolen session cannot guess the password
 * here either), and on success the session counts as freshly authenticated under a new token.
 *
 * The token is rotated because freshness belongs to the session row: every copy of the cookie
 * used to become fresh with it, so whoever held a copy (another local port, a proxy log) only
 * had to wait for the person to confirm their password once, then make the dangerous change
 * step-up exists to stop (an admin API key that outlives the session). Now the old token no
 * longer resolves: the caller sets the cookie for `sessionToken` (lib/auth/session-cookie.ts),
 * and every other copy is signed out. The row, its id and its live streams stay.
 */
export async function reauthenticateWithPassword(db: Db, actor: Actor, password: unknown, context: PasswordAttemptContext): Promise<{ authenticatedAt: Date; sessionToken: string }> {
  if (actor.kind !== "user" || !actor.sessionId) {
    throw new AppError("FORBIDDEN", "Only a dashboard session can re-authenticate.", { userMessage: "Only a signed-in person can confirm their identity; API keys do not need to." });
  }
  const user = await db.user.findUnique({ where: { id: actor.userId }, select: { passwordHash: true } });
  if (!user?.passwordHash) {
    throw new AppError("CONFLICT", "This account has no password.", { userMessage: "This account signs in through the identity provider: re-authenticate there." });
  }
  const ok = await checkPasswordAttempt(db, { email: actor.email, context, label: "step-up" }, async () => {
    const valid = typeof password === "string" && password.length > 0 && password.length <= 1024 && (await verifyPassword(user.passwordHash, password));
    return valid ? { ok: true, value: true } : { ok: false, reason: "wrong password at re-authentication", data: { userId: actor.userId } };
  });
  if (!ok) {
    throw new AppError("FORBIDDEN", "Re-authentication failed.", {
      userMessage: "That password is not correct.",
      details: { fieldErrors: { password: ["That password is not correct."] } },
    });
  }
  const authenticatedAt = new Date();
  const sessionToken = newSessionToken();
  await db.$transaction(async (tx) => {
    const updated = await tx.session.updateMany({ where: { id: actor.sessionId, userId: actor.userId }, data: { authenticatedAt, tokenHash: hashSessionToken(sessionToken) } });
    if (updated.count !== 1) throw new AppError("UNAUTHENTICATED", "The session has ended.", { userMessage: "Your session has ended; sign in again." });
    await recordAuditEvent(tx, { type: "auth.reauthenticated", actor, outcome: "allow", data: { sessionId: actor.sessionId!, method: "password", tokenRotated: true } });
  });
  return { authenticatedAt, sessionToken };
}
