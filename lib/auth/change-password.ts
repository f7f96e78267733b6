import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { AppError } from "@/lib/errors/app-error";
import { passwordSchema } from "@/lib/users/users";
import { assertCan, type Actor } from "./actor";
import { checkPasswordAttempt, type PasswordAttemptContext } from "./authenticate";
import { generatePassword, hashPassword, verifyPassword } from "./password";
import { requireStepUp } from "./step-up";
import { hashSessionToken, newSessionToken } from "./sessions";

export const changePasswordInput = z.object({
  currentPassword: z.string({ error: "Enter your current password." }).min(1, "Enter your current password.").max(1024, "A password is at most 1024 characters.").meta({ writeOnly: true, format: "password" }),
  newPassword: passwordSchema.meta({ writeOnly: true, format: "password" }),
});

const wrongCurrent = () =>
  new AppError("FORBIDDEN", "The current password is not correct.", {
    userMessage: "Your current password is not correct.",
    details: { fieldErrors: { currentPassword: ["Your current password is not correct."] } },
  });

/**
 * A person changes their own password. The current password is checked under the sign-in
 * throttle (a stolen session cannot guess it here either), which is itself the re-authentication
 * step-up asks for. The change ends every other session of the person (whoever else held one,
 * say with a copied cookie, is signed out), and the current session continues under a new token
 * (as after a re-authentication: the caller sets its cookie), all in one transaction, audited.
 */
export async function changeOwnPassword(db: Db, actor: Actor, input: unknown, context: PasswordAttemptContext): Promise<{ sessionToken: string; endedSessions: number }> {
  if (actor.kind !== "user" || !actor.sessionId) {
    throw new AppError("FORBIDDEN", "Only a dashboard session can change its password.", { userMessage: "Only a signed-in person can change their password; API keys and the CLI cannot." });
  }
  const data = changePasswordInput.parse(input);
  const user = await db.user.findUnique({ where: { id: actor.userId }, select: { passwordHash: true } });
  if (!user?.passwordHash) {
    throw new AppError("CONFLICT", "This account has no password.", { userMessage: "This account signs in through the identity provider: change your password there." });
  }
  const ok = await checkPasswordAttempt(db, { email: actor.email, context, label: "password change" }, async () =>
    (await verifyPassword(user.passwordHash, data.currentPassword)) ? { ok: true, value: true } : { ok: false, reason: "wrong current password at password change", data: { userId: actor.userId } },
  );
  if (!ok) throw wrongCurrent();
  if (data.newPassword === data.currentPassword) {
    throw new AppError("INVALID_INPUT", "The new password is the current one.", {
      userMessage: "Choose a new password that differs from your current one.",
      details: { fieldErrors: { newPassword: ["Choose a new password that differs from your current one."] } },
    });
  }
  const passwordHash = await hashPassword(data.newPassword);
  const sessionToken = newSessionToken();
  const now = new Date();
  const endedSessions = await db.$transaction(async (tx) => {
    // Compare-and-set on the hash just checked: two changes at once cannot both apply.
    const changed = await tx.user.updateMany({ where: { id: actor.userId, passwordHash: user.passwordHash, disabledAt: null }, data: { passwordHash } });
    if (changed.count !== 1) throw new AppError("CONFLICT", "The password changed meanwhile.", { userMessage: "Your password was changed meanwhile; sign in again." });
    const rotated = await tx.session.updateMany({ where: { id: actor.sessionId, userId: actor.userId }, data: { tokenHash: hashSessionToken(sessionToken), authenticatedAt: now } });
    if (rotated.count !== 1) throw new AppError("UNAUTHENTICATED", "The session has ended.", { userMessage: "Your session has ended; sign in again." });
    const { count } = await tx.session.deleteMany({ where: { userId: actor.userId, id: { not: actor.sessionId } } });
    await recordAuditEvent(tx, {
      type: "user.password_changed",
      actor,
      data: { userId: actor.userId, email: actor.email, endedSessions: count, sessionId: actor.sessionId!, tokenRotated: true, stepUp: { method: "password", authenticatedAt: now.toISOString() } },
    });
    return count;
  });
  return { sessionToken, endedSessions };
}

/**
 * An admin (step-up) or the CLI sets another user's password, e.g. for someone who lost theirs:
 * every session of that user ends. Omitted, a password is generated and returned once.
 * OIDC-only users have none to set.
 */
export async function resetUserPassword(db: Db, actor: Actor, userId: string, password?: string): Promise<{ email: string; generatedPassword: string | null; endedSessions: number }> {
  assertCan(actor, "users:write");
  // Parsed as a field, so a refusal names it ("password: Use at least 12 characters."), not "input".
  const parsed = z.object({ password: passwordSchema.optional() }).parse({ password }).password;
  // Setting someone's password is taking over their account: the same bar as a role change.
  const stepUp = requireStepUp(actor, "reset a password");
  const user = z.uuid().safeParse(userId).success ? await db.user.findUnique({ where: { id: userId }, select: { email: true, passwordHash: true } }) : null;
  if (!user) throw new AppError("NOT_FOUND", "No such user.");
  if (!user.passwordHash) throw new AppError("CONFLICT", "This user signs in through the identity provider.", { userMessage: `${user.email} signs in through the identity provider and has no password here.` });
  const generatedPassword = parsed ? null : generatePassword();
  const passwordHash = await hashPassword(parsed ?? generatedPassword!);
  const endedSessions = await db.$transaction(async (tx) => {
    await tx.user.update({ where: { id: userId }, data: { passwordHash } });
    const { count } = await tx.session.deleteMany({ where: { userId } });
    await recordAuditEvent(tx, { type: "user.password_reset", actor, data: { userId, email: user.email, endedSessions: count, generated: generatedPassword !== null, stepUp } });
    return count;
  });
  return { email: user.email, generatedPassword, endedSessions };
}
