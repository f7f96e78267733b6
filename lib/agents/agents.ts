import { z } from "zod";
import { readableText } from "@/lib/validation/text";
import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import { AlreadyDoneError, AppError } from "@/lib/errors/app-error";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { recordAuditEvent } from "@/lib/audit/record";
import { cancelApprovals } from "@/lib/approvals/cancel";
import { isUniqueViolation } from "@/lib/db/errors";
import { emailSchema } from "@/lib/users/users";
import { uuidSchema } from "./ids";
import { OwnerRequiredError } from "./owner-required";
import type { AgentView } from "./view";

export const agentNameSchema = z
  .string()
  .trim()
  .min(2, "Name must be at least 2 characters.")
  .max(64, "Name must be at most 64 characters.")
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/, "Use letters, digits, dot, dash and underscore; start with a letter or digit.");

export const createAgentInput = z.object({
  name: agentNameSchema,
  description: readableText(z.string().trim().max(2000, "Description must be at most 2000 characters."), "Description").default(""),
  /** Email of the responsible user; defaults to the acting user. */
  ownerEmail: emailSchema.optional(),
});
export type CreateAgentInput = z.input<typeof createAgentInput>;

export { uuidSchema };

// Reading agents lives in ./view (no audit writer or user schemas): `bulkhead agent list` loads only that.
export { listAgents, listAgentsInput, listAgentsPage, type AgentView } from "./view";

/** What an agent reads as (AgentView), for the Prisma paths that write and return one. */
export const agentSelect = {
  id: true,
  name: true,
  description: true,
  status: true,
  suspendedAt: true,
  createdAt: true,
  updatedAt: true,
  owner: { select: { id: true, email: true, name: true } },
} as const satisfies Prisma.AgentSelect;

const noOwner = (email: string) => `No active user with email ${email}. An agent's owner is a Bulkhead user: see the Users page or \`bulkhead user list\`.`;

/** Why `ownerEmail` cannot own an agent, or null when it names an active user. */
async function ownerProblem(tx: Pick<Db, "user">, ownerEmail: string): Promise<string | null> {
  const owner = await tx.user.findUnique({ where: { email: ownerEmail }, select: { disabledAt: true } });
  return !owner || owner.disabledAt ? noOwner(ownerEmail) : null;
}

async function resolveOwnerId(tx: Pick<Db, "user">, actor: Actor, ownerEmail: string | undefined): Promise<string> {
  if (ownerEmail) {
    const owner = await tx.user.findUnique({ where: { email: ownerEmail }, select: { id: true, disabledAt: true } });
    if (!owner || owner.disabledAt) {
      const why = noOwner(ownerEmail);
      throw new AppError("INVALID_INPUT", why, {
        details: { fieldErrors: { ownerEmail: [why] } },
      });
    }
    return owner.id;
  }
  if (actor.kind === "user") return actor.userId;
  if (actor.kind === "api_key" && actor.createdById) return actor.createdById;
  // The CLI acts as the system: with a single active admin, that admin owns the agent.
  const admins = await tx.user.findMany({ where: { role: "admin", disabledAt: null }, select: { id: true }, take: 2 });
  if (admins.length === 1 && admins[0]) return admins[0].id;
  throw new OwnerRequiredError(admins.length === 0 ? "no_admin" : "several_admins");
}

// Agent registrations are taken one at a time, so that two names differing only in case cannot
// both be created at the same moment (the unique index compares names exactly).
const CREATE_LOCK = 0x6268_6167; // "bhag"

function nameTaken(name: string, requested = name): AppError {
  const message = `An agent named ${name} already exists${name === requested ? "" : " (names that differ only in case are one name)"}.`;
  return new AppError("CONFLICT", message, { details: { fieldErrors: { name: [message] } } });
}

export async function createAgent(db: Db, actor: Actor, input: CreateAgentInput): Promise<AgentView> {
  assertCan(actor, "agents:write");
  const checked = createAgentInput.safeParse(input);
  if (!checked.success) {
    // An owner who is no active user is said beside the other mistakes, not on the next try.
    const email = createAgentInput.shape.ownerEmail.safeParse((input as { ownerEmail?: unknown } | null)?.ownerEmail);
    if (email.success && email.data && !checked.error.issues.some((i) => i.path[0] === "ownerEmail")) {
      const problem = await ownerProblem(db, email.data);
      if (problem) checked.error.issues.push({ code: "custom", path: ["ownerEmail"], message: problem, input: email.data });
    }
    throw checked.error;
  }
  const data = checked.data;
  try {
    return await db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${CREATE_LOCK}::int)`;
      // `deploy-bot` and `Deploy-Bot` read as one agent in the dashboard, the audit log and the
      // CLI (which takes an agent's name): a name equal to another but for case is taken.
      const [twin] = await tx.$queryRaw<Array<{ name: string }>>`SELECT "name" FROM "agents" WHERE lower("name") = lower(${data.name}) LIMIT 1`;
      if (twin) throw nameTaken(twin.name, data.name);
      const ownerId = await resolveOwnerId(tx, actor, data.ownerEmail);
      const agent = await tx.agent.create({
        data: { name: data.name, description: data.description, ownerId },
        select: agentSelect,
      });
      await recordAuditEvent(tx, {
        type: "agent.created",
        actor,
        agentId: agent.id,
        data: { name: agent.name, ownerEmail: agent.owner.email },
      });
      return agent;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw nameTaken(data.name);
    throw error;
  }
}

/** A missing agent and a malformed id look the same to the caller. */
export async function getAgent(db: Db, actor: Actor, id: string): Promise<AgentView> {
  assertCan(actor, "read");
  const parsed = uuidSchema.safeParse(id);
  const agent = parsed.success ? await db.agent.findUnique({ where: { id: parsed.data }, select: agentSelect }) : null;
  if (!agent) throw new AppError("NOT_FOUND", "No such agent.");
  return agent;
}

/**
 * Suspending an agent revokes its active tasks and cancels its held requests in the same
 * transaction, so none of its task tokens verify any more and no approval can release anything;
 * reactivating does not bring those tasks back.
 */
export async function setAgentSuspended(db: Db, actor: Actor, id: string, suspended: boolean): Promise<AgentView> {
  assertCan(actor, "agents:write");
  const parsed = uuidSchema.safeParse(id);
  if (!parsed.success) throw new AppError("NOT_FOUND", "No such agent.");
  return db.$transaction(async (tx) => {
    // Taken in turn with another suspension or reactivation of the same agent (and with task
    // creation and token mints, which hold it shared): the second finds it done and records nothing.
    await tx.$queryRaw`SELECT 1 FROM "agents" WHERE "id" = ${parsed.data}::uuid FOR UPDATE`;
    const current = await tx.agent.findUnique({ where: { id: parsed.data }, select: { status: true, suspendedAt: true } });
    if (!current) throw new AppError("NOT_FOUND", "No such agent.");
    const target = suspended ? "suspended" : "active";
    // Done already (by someone else, or a second click): never answered as if this call had
    // suspended (or reactivated) the agent; AlreadyDoneError says so, with the agent as it is.
    if (current.status === target) {
      const since = current.suspendedAt ? ` since ${current.suspendedAt.toISOString()}` : "";
      const agent = await tx.agent.findUniqueOrThrow({ where: { id: parsed.data }, select: agentSelect });
      throw new AlreadyDoneError(suspended ? `The agent is already suspended${since}; nothing was changed.` : "The agent is already active; nothing was changed.", agent, { status: current.status });
    }
    const now = new Date();
    const agent = await tx.agent.update({
      where: { id: parsed.data },
      data: { status: target, suspendedAt: suspended ? now : null },
      select: agentSelect,
    });
    let revokedTasks = 0;
    let cancelledApprovals = 0;
    if (suspended) {
      const r = await tx.task.updateMany({
        where: { agentId: parsed.data, status: "active" },
        data: { status: "revoked", endedAt: now, endedReason: "agent suspended" },
      });
      revokedTasks = r.count;
      cancelledApprovals = (await cancelApprovals(tx, { agentId: parsed.data }, "agent_suspended", actor, now)).length;
    }
    await recordAuditEvent(tx, {
      type: suspended ? "agent.suspended" : "agent.reactivated",
      actor,
      agentId: agent.id,
      data: { name: agent.name, ...(suspended ? { revokedTasks, cancelledApprovals } : {}) },
    });
    return agent;
  });
}
