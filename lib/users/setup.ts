import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { visibleName } from "@/lib/validation/text";
import type { Db } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { hashPassword } from "@/lib/auth/password";
import { recordAuditEvent } from "@/lib/audit/record";
import { emailSchema, passwordSchema } from "./users";

/**
 * First-run setup: while no user exists, each start issues a fresh one-time link (valid 24 hours,
 * older links invalidated) that lets one person create the first admin. There is no default
 * password; once an admin exists, setup is closed for good.
 */
const SETUP_TTL_MS = 24 * 3600 * 1000;
const hash = (token: string) => createHash("sha256").update(token).digest("hex");

export async function issueSetupTokenIfNeeded(db: Db, now = new Date()): Promise<string | null> {
  return db.$transaction(async (tx) => {
    if ((await tx.user.count()) > 0) return null;
    await tx.setupToken.deleteMany({});
    const token = randomBytes(24).toString("base64url");
    await tx.setupToken.create({ data: { tokenHash: hash(token), expiresAt: new Date(now.getTime() + SETUP_TTL_MS) } });
    return token;
  });
}

export async function isSetupTokenValid(db: Db, token: string, now = new Date()): Promise<boolean> {
  const row = await db.setupToken.findUnique({ where: { tokenHash: hash(token) } });
  return Boolean(row && !row.usedAt && row.expiresAt > now && (await db.user.count()) === 0);
}

export const setupInput = z
  .object({
    email: emailSchema,
    name: visibleName(z.string().trim().max(200, "Name must be at most 200 characters."), "Name").optional(),
    password: passwordSchema,
    confirm: z.string(),
  })
  .refine((v) => v.password === v.confirm, { path: ["confirm"], message: "The passwords do not match." });

function invalidSetupLink(): AppError {
  return new AppError("FORBIDDEN", "This setup link is invalid, expired or already used.");
}

export async function completeSetup(db: Db, token: string, input: z.input<typeof setupInput>, now = new Date()): Promise<string> {
  const data = setupInput.parse(input);
  // Anyone can call the setup action with any token (it is unauthenticated by design), and hashing
  // the password costs tens of milliseconds of CPU and 19 MiB on the thread pool sign-ins share:
  // a token that cannot be used is refused before any hashing, with the same answer as below.
  if (!(await isSetupTokenValid(db, token, now))) throw invalidSetupLink();
  const passwordHash = await hashPassword(data.password);
  return db.$transaction(async (tx) => {
    // Every token row locked, not only this one: two submissions, of one link or of two links
    // left valid side by side (two starts racing to issue one), wait for each other, and the
    // second sees the first's admin below (READ COMMITTED: the count reads after the lock).
    const rows = await tx.$queryRaw<Array<{ id: string; usable: boolean }>>`
      SELECT id, (token_hash = ${hash(token)} AND used_at IS NULL AND expires_at > ${now}) AS usable
        FROM setup_tokens ORDER BY id FOR UPDATE`;
    const row = rows.find((r) => r.usable);
    // Checked again under the locks: only the first submission creates an admin.
    if (!row || (await tx.user.count()) > 0) throw invalidSetupLink();
    await tx.setupToken.update({ where: { id: row.id }, data: { usedAt: now } });
    const user = await tx.user.create({ data: { email: data.email, name: data.name || null, role: "admin", passwordHash } });
    await recordAuditEvent(tx, { type: "user.created", actor: { kind: "system", label: "first-run setup" }, data: { userId: user.id, email: user.email, role: "admin" } });
    return user.id;
  });
}
