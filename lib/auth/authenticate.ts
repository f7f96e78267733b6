import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { emailSchema } from "@/lib/users/users";
import { verifyPassword } from "./password";

/**
 * Checks a local account's email and password. Every failure (unknown email, wrong password,
 * disabled account, SSO-only account) returns null, so callers cannot tell which part was wrong.
 */
export async function authenticateLocal(db: Db, email: unknown, password: unknown): Promise<string | null> {
  const parsedEmail = emailSchema.safeParse(email);
  if (!parsedEmail.success || typeof password !== "string" || password.length === 0 || password.length > 1024) {
    await verifyPassword(null, "");
    return null;
  }
  const user = await db.user.findUnique({
    where: { email: parsedEmail.data },
    select: { id: true, passwordHash: true, disabledAt: true },
  });
  const ok = await verifyPassword(user?.passwordHash, password);
  if (!user || !ok || user.disabledAt) {
    await recordAuditEvent(db, {
      type: "auth.sign_in_failed",
      actor: { kind: "system", label: "sign-in" },
      outcome: "deny",
      // Which part was wrong is recorded for the audit trail only, never shown to the client.
      reason: !user ? "unknown email" : !ok ? "wrong password" : "account disabled",
      data: { email: parsedEmail.data },
    });
    return null;
  }
  return user.id;
}

/**
 * Maps an OIDC sign-in to an existing Bulkhead user. Users are provisioned by an admin (Users
 * page or CLI) with a role; an identity whose verified email has no active account is refused.
 */
export async function authenticateOidc(
  db: Db,
  identity: { provider: string; subject: string; email: string | null | undefined; emailVerified: boolean | undefined },
): Promise<string | null> {
  const linked = await db.account.findUnique({
    where: { provider_providerAccountId: { provider: identity.provider, providerAccountId: identity.subject } },
    select: { user: { select: { id: true, disabledAt: true } } },
  });
  if (linked) return linked.user.disabledAt ? null : linked.user.id;
  const email = emailSchema.safeParse(identity.email ?? "");
  // An unverified email is not proof of identity; refuse rather than link.
  if (!email.success || identity.emailVerified === false) return null;
  const user = await db.user.findUnique({ where: { email: email.data }, select: { id: true, disabledAt: true } });
  if (!user || user.disabledAt) {
    await recordAuditEvent(db, {
      type: "auth.sign_in_failed",
      actor: { kind: "system", label: "sign-in" },
      outcome: "deny",
      reason: user ? "account disabled" : "no Bulkhead account for this identity",
      data: { email: email.data, provider: identity.provider },
    });
    return null;
  }
  await db.account.create({ data: { userId: user.id, provider: identity.provider, providerAccountId: identity.subject } });
  return user.id;
}
