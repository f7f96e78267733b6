import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { visibleName } from "@/lib/validation/text";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { generatePassword, hashPassword, MIN_PASSWORD_LENGTH } from "@/lib/auth/password";
import { ROLES, roleCan, type Role } from "@/lib/auth/roles";
import { cancelApprovalsGivenBy, cancelApprovalsVotedThrough } from "@/lib/approvals/cancel";
import { requireStepUp } from "@/lib/auth/step-up";
import { recordAuditEvent } from "@/lib/audit/record";
import { isUniqueViolation } from "@/lib/db/errors";
import type { UserSummary } from "./view";

export const emailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.email({ error: "Enter a valid email address." }).max(254, "An email address is at most 254 characters."));

export const passwordSchema = z
  .string()
  .min(MIN_PASSWORD_LENGTH, `Use at least ${MIN_PASSWORD_LENGTH} characters.`)
  .max(1024, "That password is too long.");

export const createUserInput = z.object({
  email: emailSchema,
  name: visibleName(z.string().trim().max(200, "Name must be at most 200 characters."), "Name").optional(),
  role: z.enum(ROLES, { error: `Role must be one of: ${ROLES.join(", ")}.` }),
  /** Omitted: a password is generated and returned once. */
  password: passwordSchema.optional(),
});
export type CreateUserInput = z.input<typeof createUserInput>;

// Reading users lives in ./view (no password hasher): `bulkhead user list` loads only that.
export { listUsers, type UserSummary } from "./view";

/** The columns toSummary needs, for the Prisma paths that write and return a user. */
export const summarySelect = {
  id: true,
  email: true,
  name: true,
  role: true,
  disabledAt: true,
  lastLoginAt: true,
  createdAt: true,
  passwordHash: true,
} as const;

export function toSummary(u: {
  id: string;
  email: string;
  name: string | null;
  role: Role;
  disabledAt: Date | null;
  lastLoginAt: Date | null;
  createdAt: Date;
  passwordHash: string | null;
}): UserSummary {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role,
    disabled: u.disabledAt !== null,
    lastLoginAt: u.lastLoginAt,
    createdAt: u.createdAt,
    sso: u.passwordHash === null,
  };
}

export async function createUser(
  db: Db,
  actor: Actor,
  input: CreateUserInput,
): Promise<{ user: UserSummary; generatedPassword: string | null }> {
  assertCan(actor, "users:write");
  const data = createUserInput.parse(input);
  // A new account with a role is a way back in for whoever holds a stolen session.
  const stepUp = requireStepUp(actor, "add a user");
  const generatedPassword = data.password ? null : generatePassword();
  const passwordHash = await hashPassword(data.password ?? generatedPassword!);
  try {
    const user = await db.$transaction(async (tx) => {
      const created = await tx.user.create({
        data: { email: data.email, name: data.name || null, role: data.role, passwordHash },
        select: summarySelect,
      });
      await recordAuditEvent(tx, {
        type: "user.created",
        actor,
        data: { userId: created.id, email: created.email, role: created.role, stepUp },
      });
      return created;
    });
    return { user: toSummary(user), generatedPassword };
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new AppError("CONFLICT", `A user with email ${data.email} already exists.`);
    }
    throw error;
  }
}

/**
 * Role changes and disabling are taken one at a time (a transaction-scoped advisory lock): two
 * admins demoting or disabling each other at the same moment would each count the other as the
 * remaining admin and leave none; in turn, the second is refused as the last admin. The same
 * change twice at once happens, and is audited, once.
 */
const USERS_LOCK = 0x6268_7573; // "bhus"

async function lockUserChanges(tx: Pick<Db, "$executeRaw">): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${USERS_LOCK}::int)`;
}

async function countActiveAdmins(tx: Pick<Db, "user">, excludingId: string): Promise<number> {
  return tx.user.count({ where: { role: "admin", disabledAt: null, id: { not: excludingId } } });
}

/** Changing a role takes effect on the user's very next request: roles are read per request. */
export async function setUserRole(db: Db, actor: Actor, userId: string, role: Role): Promise<UserSummary> {
  assertCan(actor, "users:write");
  const parsedRole = z.enum(ROLES).parse(role);
  const stepUp = requireStepUp(actor, "change a role");
  return db.$transaction(async (tx) => {
    await lockUserChanges(tx);
    const user = await tx.user.findUnique({ where: { id: userId }, select: summarySelect });
    if (!user) throw new AppError("NOT_FOUND", "No such user.");
    if (user.role === "admin" && parsedRole !== "admin" && (await countActiveAdmins(tx, userId)) === 0) {
      throw new AppError("CONFLICT", "This is the last active admin; make someone else admin first.");
    }
    const updated = await tx.user.update({ where: { id: userId }, data: { role: parsedRole }, select: summarySelect });
    // No longer one who may approve: what they approved and is not used yet is not released.
    const lostDecide = roleCan(user.role, "approvals:decide") && !roleCan(parsedRole, "approvals:decide");
    const cancelledApprovals = lostDecide ? (await cancelApprovalsGivenBy(tx, userId, actor)).length : 0;
    await recordAuditEvent(tx, {
      type: "user.role_changed",
      actor,
      data: { userId, email: user.email, from: user.role, to: parsedRole, stepUp, ...(lostDecide ? { cancelledApprovals } : {}) },
    });
    return toSummary(updated);
  });
}

/**
 * Revokes the live API keys `userId` created, each audited with why. A disabled user's keys
 * already stop working (authentication checks the creator), but only revocation keeps them from
 * working again when the user is re-enabled: whoever held a copy of such a key would get it back.
 * As any revocation, it cancels what the keys approved (or voted for) that could still release a
 * request (`approver_key_revoked`, cancel.ts).
 */
async function revokeKeysCreatedBy(tx: Pick<Db, "apiKey" | "approval" | "auditEvent">, actor: Actor, userId: string, reason: string, now: Date): Promise<string[]> {
  const keys = await tx.apiKey.findMany({ where: { createdById: userId, revokedAt: null }, select: { id: true, name: true, prefix: true } });
  if (keys.length === 0) return [];
  // Only the keys this update revokes (a concurrent revocation may have taken one: it cancelled for it).
  const revoked = await tx.apiKey.updateManyAndReturn({ where: { id: { in: keys.map((k) => k.id) }, revokedAt: null }, data: { revokedAt: now }, select: { id: true } });
  const mine = new Set(revoked.map((k) => k.id));
  for (const key of keys.filter((k) => mine.has(k.id))) {
    const cancelledApprovals = (await cancelApprovalsVotedThrough(tx, [key.id], actor, now)).length;
    await recordAuditEvent(tx, { type: "api_key.revoked", actor, reason, data: { apiKeyId: key.id, name: key.name, prefix: key.prefix, reason, createdById: userId, cancelledApprovals } });
  }
  return [...mine];
}

/**
 * Disabling a user ends all their sessions and revokes the API keys they created, at once; so
 * re-enabling gives back the account, never the keys (and revokes any key still live from before
 * keys were revoked on disabling).
 */
export async function setUserDisabled(db: Db, actor: Actor, userId: string, disabled: boolean): Promise<UserSummary> {
  assertCan(actor, "users:write");
  // Disabling is a kill switch and stays quick; enabling gives a role back.
  const stepUp = disabled ? undefined : requireStepUp(actor, "re-enable a user");
  return db.$transaction(async (tx) => {
    await lockUserChanges(tx);
    const user = await tx.user.findUnique({ where: { id: userId }, select: summarySelect });
    if (!user) throw new AppError("NOT_FOUND", "No such user.");
    // Already so (a second click, or a concurrent request that got here first): nothing to record.
    if ((user.disabledAt !== null) === disabled) return toSummary(user);
    if (disabled && user.role === "admin" && (await countActiveAdmins(tx, userId)) === 0) {
      throw new AppError("CONFLICT", "This is the last active admin; it cannot be disabled.");
    }
    const now = new Date();
    const updated = await tx.user.update({
      where: { id: userId },
      data: { disabledAt: disabled ? now : null },
      select: summarySelect,
    });
    const endedSessions = disabled ? (await tx.session.deleteMany({ where: { userId } })).count : 0;
    // What they approved and is not used yet is not released (a compromised account's approvals),
    // whether through a session or one of their keys: `approver_removed`. Then their keys are
    // revoked, which cancels what is left that a key voted for (pending N-of-M approvals).
    const cancelledApprovals = disabled ? (await cancelApprovalsGivenBy(tx, userId, actor, now)).length : 0;
    const revokedApiKeys = await revokeKeysCreatedBy(tx, actor, userId, disabled ? "its creator was disabled" : "created before its creator was disabled", now);
    await recordAuditEvent(tx, {
      type: disabled ? "user.disabled" : "user.enabled",
      actor,
      data: { userId, email: user.email, ...(disabled ? { endedSessions, cancelledApprovals } : {}), revokedApiKeys, ...(stepUp ? { stepUp } : {}) },
    });
    return toSummary(updated);
  });
}
