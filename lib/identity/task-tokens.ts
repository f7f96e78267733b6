import type { Db } from "@/lib/db/client";
import type { IdentityConfig } from "@/lib/config/identity";
import { uuidSchema } from "@/lib/agents/agents";
import { cancelApprovals } from "@/lib/approvals/cancel";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { AlreadyDoneError, AppError } from "@/lib/errors/app-error";
import { everyPage, pageOf, readLimit, readTokenCursor, tokenCursor, type PageRequest } from "@/lib/db/list-page";
import { MAX_TOKEN_TTL_SECONDS } from "@/lib/tasks/settings";
import { loadActiveSigningKey, loadVerificationKeys } from "./key-store";
import { VerificationKeySet } from "./key-ring";
import { RevocationSet } from "./revocation";
import { loadRevocationSnapshot } from "./revocation-source";
import { TokenError } from "./errors";
import { mintTaskToken, verifyTaskToken, type VerifiedTaskToken } from "./token";

export interface IssuedTaskToken {
  token: string;
  jti: string;
  kid: string;
  expiresAt: Date;
}

/**
 * Mints the agent's only credential for one task. The token is returned once and never stored;
 * only its jti, key id and lifetime are recorded (so it can be revoked and its key retired).
 */
export async function issueTaskToken(
  db: Db,
  actor: Actor,
  dashboardKey: Buffer,
  config: IdentityConfig,
  taskId: string,
  now = new Date(),
): Promise<IssuedTaskToken> {
  assertCan(actor, "tasks:write");
  const parsed = uuidSchema.safeParse(taskId);
  const found = parsed.success ? await db.task.findUnique({ where: { id: parsed.data }, select: { id: true, agentId: true } }) : null;
  if (!found) throw new AppError("NOT_FOUND", "No such task.");
  const key = await loadActiveSigningKey(db, dashboardKey, now);
  if (!key) throw new AppError("INTERNAL", "No active signing key: restart Bulkhead or rotate keys.");
  const minted = await db.$transaction(async (tx) => {
    // Checked and recorded under share locks on the agent and the task (in the order suspending
    // takes them): ending the task or suspending the agent at the same moment either commits
    // first and is read here, or waits until this token is recorded, and then covers it.
    await tx.$queryRaw`SELECT 1 FROM "agents" WHERE "id" = ${found.agentId}::uuid FOR SHARE`;
    await tx.$queryRaw`SELECT 1 FROM "tasks" WHERE "id" = ${found.id}::uuid FOR SHARE`;
    const task = await tx.task.findUniqueOrThrow({ where: { id: found.id }, select: { id: true, status: true, expiresAt: true, agentId: true, scope: true, agent: { select: { status: true } } } });
    if (task.status !== "active" || task.expiresAt <= now) throw new AppError("CONFLICT", "The task is no longer active; create a new task.");
    if (task.agent.status !== "active") throw new AppError("CONFLICT", "The agent is suspended.");
    const minted = await mintTaskToken({
      ...config,
      key,
      agentId: task.agentId,
      taskId: task.id,
      // The task's scope as it is now; the token keeps it for its whole life.
      scope: task.scope,
      ttlSeconds: MAX_TOKEN_TTL_SECONDS,
      taskEndsAt: task.expiresAt,
      now,
    });
    await tx.issuedToken.create({
      data: {
        jti: minted.jti,
        taskId: task.id,
        agentId: task.agentId,
        kid: key.kid,
        issuedAt: minted.issuedAt,
        expiresAt: minted.expiresAt,
        issuedById: actor.kind === "user" ? actor.userId : null,
      },
    });
    await recordAuditEvent(tx, {
      type: "token.minted",
      actor,
      agentId: task.agentId,
      taskId: task.id,
      data: { jti: minted.jti, kid: key.kid, expiresAt: minted.expiresAt.toISOString(), scope: task.scope },
    });
    return minted;
  });
  return { token: minted.token, jti: minted.jti, kid: key.kid, expiresAt: minted.expiresAt };
}

/**
 * Revokes one token; the requests it has waiting for approval are cancelled with it. A token
 * already revoked is an AlreadyDoneError (when it was revoked; nothing recorded). With
 * `taskId` (the dashboard's button on a task's page), a token of another task is "no such token"
 * and nothing is revoked: the page a person acted on names the task.
 */
export async function revokeTaskToken(db: Db, actor: Actor, jti: string, now = new Date(), options: { taskId?: string } = {}): Promise<void> {
  assertCan(actor, "tasks:write");
  if (typeof jti !== "string" || !/^[A-Za-z0-9_-]{16,128}$/.test(jti)) throw new AppError("NOT_FOUND", "No such token.");
  await db.$transaction(async (tx) => {
    // Two revocations at once are taken in turn: the second finds it revoked and records nothing.
    await tx.$queryRaw`SELECT 1 FROM "issued_tokens" WHERE "jti" = ${jti} FOR UPDATE`;
    const token = await tx.issuedToken.findUnique({ where: { jti }, select: { jti: true, taskId: true, agentId: true, revokedAt: true } });
    if (!token || (options.taskId !== undefined && token.taskId !== options.taskId)) throw new AppError("NOT_FOUND", "No such token.");
    // A second revocation says when the first one was (AlreadyDoneError): answering "revoked" as
    // if it were the first told a person or a script that their action took effect when it did nothing.
    if (token.revokedAt) {
      const revokedAt = token.revokedAt.toISOString();
      throw new AlreadyDoneError(`This token was already revoked at ${revokedAt}; nothing was changed.`, { jti, revokedAt }, { revokedAt });
    }
    await tx.issuedToken.update({ where: { jti }, data: { revokedAt: now } });
    const cancelled = await cancelApprovals(tx, { jti }, "token_revoked", actor, now);
    await recordAuditEvent(tx, { type: "token.revoked", actor, agentId: token.agentId, taskId: token.taskId, data: { jti, cancelledApprovals: cancelled.length } });
  });
}

/**
 * One page of a task's tokens, newest first (ties of issue time by jti), metadata only: at most
 * `limit` (default 500) and the cursor of the next page. Who mints tokens, and how often, is up
 * to the people and scripts with `tasks:write`: a long task can have thousands.
 */
export async function listTaskTokensPage(db: Db, actor: Actor, taskId: string, page: PageRequest = {}) {
  assertCan(actor, "read");
  const after = readTokenCursor(page.cursor);
  const limit = readLimit(page.limit);
  // A task that does not exist is not one with no tokens: the same 404 as the task's own routes.
  const task = uuidSchema.safeParse(taskId).success ? await db.task.findUnique({ where: { id: taskId }, select: { id: true } }) : null;
  if (!task) throw new AppError("NOT_FOUND", "No such task.");
  const at = after ? new Date(Number(after.atMs)) : null;
  const rows = await db.issuedToken.findMany({
    where: at && after ? { taskId, OR: [{ issuedAt: { lt: at } }, { issuedAt: at, jti: { lt: after.jti } }] } : { taskId },
    orderBy: [{ issuedAt: "desc" }, { jti: "desc" }],
    take: limit + 1,
    select: { jti: true, kid: true, issuedAt: true, expiresAt: true, revokedAt: true, issuedBy: { select: { email: true } } },
  });
  return pageOf(rows, limit, (r) => r, (r) => tokenCursor({ atMs: String(r.issuedAt.getTime()), jti: r.jti }));
}

/** Every token of a task, newest first (page after page). */
export async function listTaskTokens(db: Db, actor: Actor, taskId: string) {
  return everyPage((cursor) => listTaskTokensPage(db, actor, taskId, { cursor }));
}

/**
 * Verifies a token against the current database state with the one verification function
 * (`bulkhead token verify`; the proxy worker verifies from its in-memory snapshot instead).
 */
export async function verifyTaskTokenNow(db: Db, config: IdentityConfig, token: string, now = new Date()): Promise<VerifiedTaskToken> {
  const keys = await VerificationKeySet.fromRecords(await loadVerificationKeys(db));
  const revocation = new RevocationSet();
  revocation.replaceAll(await loadRevocationSnapshot(db, now));
  const verified = await verifyTaskToken(token, { ...config, now, keys: keys.resolver, revocation });
  // As the worker does: a jti Bulkhead never issued for this task is refused.
  const issued = await db.issuedToken.findUnique({ where: { jti: verified.jti }, select: { taskId: true, agentId: true } });
  if (!issued || issued.taskId !== verified.taskId || issued.agentId !== verified.agentId) throw new TokenError("jti_unknown");
  return verified;
}
