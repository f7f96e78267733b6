/**
 * Sandboxes as data: the binding source address -> sandbox -> task that the worker authenticates
 * by. Local network-namespace sandboxes are made by the privileged launcher (`bulkhead sandbox
 * run`); the dashboard and API, which run unprivileged, list them, stop them (the launcher
 * watching the row tears the namespace down) and register *external* sandboxes: agents isolated
 * elsewhere (a Kubernetes pod whose NetworkPolicy lets it reach only the worker), bound to a task
 * by their address. Every start, stop and removal is audited in the same transaction.
 */
import { isIPv4, isIPv6 } from "node:net";
import ipaddr from "ipaddr.js";
import { sandboxGateways } from "@/lib/config/isolation";
import { isMachineAddress } from "@/lib/net/own-addresses";
import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { recordAuditEvent } from "@/lib/audit/record";
import { isUniqueViolation } from "@/lib/db/errors";
import { AppError } from "@/lib/errors/app-error";
import type { SandboxView } from "./view";

const uuid = z.uuid();

const sandboxSelect = {
  id: true,
  name: true,
  kind: true,
  taskId: true,
  sourceAddress: true,
  sourceAddressV6: true,
  addresses: true,
  instanceId: true,
  createdBy: true,
  blockedAttempts: true,
  createdAt: true,
  removedAt: true,
  removedReason: true,
  limits: true,
  task: { select: { id: true, purpose: true, status: true, expiresAt: true, agent: { select: { id: true, name: true } } } },
} as const;

// Reading the list lives in ./view (no audit writer, no address parser): `bulkhead sandbox list` loads only that.
export { listSandboxes, listSandboxesPage, type SandboxView } from "./view";

export async function getSandbox(db: Db, actor: Actor, id: string): Promise<SandboxView> {
  assertCan(actor, "read");
  const parsed = uuid.safeParse(id);
  const row = parsed.success ? await db.sandbox.findUnique({ where: { id: parsed.data }, select: sandboxSelect }) : null;
  if (!row) throw new AppError("NOT_FOUND", "No such sandbox.");
  return row;
}

const canonicalIp = (value: string) => {
  const ip = ipaddr.parse(value);
  return ip.kind() === "ipv6" && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address().toString() : ip.toString();
};

const DOTTED_QUAD = /^(?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3}$/;
const NEVER_A_SOURCE = new Set(["unspecified", "broadcast", "multicast"]);

/**
 * Why `value` is not an agent's source address written one way, or null. ipaddr.js (like
 * inet_aton) also reads "10.0.12" as 10.0.0.12, "012.0.0.1" as 10.0.0.1 (octal), "0xa000001" and
 * "167772161" as 10.0.0.1: a typo or a crafted spelling would bind the task's authority to another
 * pod than the one meant. IPv4 is four decimal numbers without leading zeros; IPv6 has no zone
 * (the worker never sees one); unspecified, broadcast and multicast addresses never open a connection.
 * A loopback address (127.0.0.0/8, ::1, also IPv4-mapped), or one of this machine's own, is no
 * pod's: the transparent listeners listen on loopback by default, and every local process (another
 * agent given only the explicit proxy, a script) would be taken for this task there.
 */
function sourceAddressProblem(value: string): string | null {
  if (value.includes(":")) {
    if (value.includes("%")) return "must not carry an IPv6 zone (%eth0): the worker sees the address alone";
    if (!isIPv6(value)) return "must be an IPv4 or IPv6 address";
  } else if (!DOTTED_QUAD.test(value) || !isIPv4(value)) return "must be an IPv4 address written as four decimal numbers without leading zeros (e.g. 10.0.0.12), or an IPv6 address";
  const range = ipaddr.process(value).range();
  if (range === "loopback") {
    return "is a loopback address, which every process on the worker's machine connects from: the task's authority would go to all of them, without a token";
  }
  // The sandbox gateways are the worker's machine's (on its `lo` while isolation runs), whichever
  // machine this runs on and whether or not they are there yet.
  if (sandboxGateways().includes(canonicalIp(value))) {
    return "is a sandbox gateway address (the first of BULKHEAD_SANDBOX_POOL_V4 or BULKHEAD_SANDBOX_POOL_V6), an address of the worker's machine that every process there can connect from: the task's authority would go to all of them, without a token";
  }
  // An address of this machine's own interfaces is the same thing, reached another way.
  if (isMachineAddress(canonicalIp(value))) {
    return "is an address of the machine Bulkhead runs on, which every process there can connect from: the task's authority would go to all of them, without a token";
  }
  return NEVER_A_SOURCE.has(range) ? `is a${range === "unspecified" ? "n" : ""} ${range} address, which no agent connects from` : null;
}

export const registerSandboxInput = z.strictObject({
  taskId: z.uuid(),
  /** The agent's source address as the worker sees it (a pod IP). */
  address: z
    .string()
    .superRefine((value, ctx) => {
      const problem = sourceAddressProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: `address ${problem}` });
    })
    .transform(canonicalIp),
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, "lower-case letters, digits, '.' and '-' (at most 63)")
    .optional(),
});

function addressTaken(address: string): AppError {
  const message = `The address ${address} is already bound to a live sandbox.`;
  return new AppError("CONFLICT", message, { details: { fieldErrors: { address: [message] } } });
}

function nameTaken(name: string): AppError {
  const message = `A sandbox named ${name} already exists (names stay taken after a sandbox is stopped).`;
  return new AppError("CONFLICT", message, { details: { fieldErrors: { name: [message] } } });
}

/**
 * Binds an externally isolated agent's address to an active task. One live binding per address,
 * and one sandbox per name (a stopped one keeps its name): either taken is a 409 naming the field,
 * whether the check below sees it or the unique index does (two registrations at once both pass
 * the check; the second's insert is refused, and was a 500).
 */
export async function registerExternalSandbox(db: Db, actor: Actor, input: z.input<typeof registerSandboxInput>): Promise<SandboxView> {
  assertCan(actor, "tasks:write");
  const parsed = registerSandboxInput.parse(input);
  try {
    return await insertExternalSandbox(db, actor, parsed);
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    if (parsed.name !== undefined && (await db.sandbox.count({ where: { name: parsed.name } })) > 0) throw nameTaken(parsed.name);
    throw addressTaken(parsed.address);
  }
}

async function insertExternalSandbox(db: Db, actor: Actor, parsed: z.output<typeof registerSandboxInput>): Promise<SandboxView> {
  const v6 = parsed.address.includes(":");
  return db.$transaction(async (tx) => {
    const task = await tx.task.findFirst({ where: { id: parsed.taskId, status: "active", expiresAt: { gt: new Date() }, agent: { status: "active" } }, select: { id: true, agentId: true } });
    if (!task) {
      // A task that does not exist is not an ended one: 404, as every route naming a task answers.
      if ((await tx.task.count({ where: { id: parsed.taskId } })) === 0) throw new AppError("NOT_FOUND", "No such task.", { details: { fieldErrors: { taskId: ["No such task."] } } });
      const inactive = "The task is not active (ended, expired, revoked, or its agent is suspended).";
      throw new AppError("INVALID_INPUT", inactive, { details: { fieldErrors: { taskId: [inactive] } } });
    }
    const taken = await tx.sandbox.findFirst({ where: v6 ? { sourceAddressV6: parsed.address } : { sourceAddress: parsed.address }, select: { id: true } });
    if (taken) throw addressTaken(parsed.address);
    if (parsed.name !== undefined && (await tx.sandbox.findUnique({ where: { name: parsed.name }, select: { id: true } }))) throw nameTaken(parsed.name);
    const name = parsed.name ?? `external-${parsed.address.replaceAll(/[:.]/g, "-")}-${Date.now().toString(36)}`;
    const row = await tx.sandbox.create({
      data: {
        taskId: task.id,
        name,
        kind: "external",
        sourceAddress: v6 ? null : parsed.address,
        sourceAddressV6: v6 ? parsed.address : null,
        addresses: parsed.address,
        createdBy: actorLabel(actor),
      },
      select: sandboxSelect,
    });
    await recordAuditEvent(tx, { type: "sandbox.started", actor, agentId: task.agentId, taskId: task.id, outcome: "allow", reason: `external sandbox ${name} registered at ${parsed.address}`, data: { sandboxId: row.id, kind: "external", addresses: parsed.address } });
    return row;
  });
}

/**
 * Stops a sandbox: its binding is removed at once (every worker refuses its address and closes its
 * connections); the launcher of a local sandbox sees the row go and tears the namespace down.
 * Stopping one that is already removed changes nothing.
 */
export async function stopSandbox(db: Db, actor: Actor, id: string, reason = "stopped by a person"): Promise<SandboxView> {
  assertCan(actor, "tasks:write");
  const parsed = uuid.safeParse(id);
  if (!parsed.success) throw new AppError("NOT_FOUND", "No such sandbox.");
  return markSandboxRemoved(db, actor, parsed.data, reason, "sandbox.stopped");
}

/** Clears a sandbox's binding and audits it (`sandbox.stopped` by a person, `sandbox.removed` on teardown). */
export async function markSandboxRemoved(db: Db, actor: Actor, id: string, reason: string, type: "sandbox.stopped" | "sandbox.removed"): Promise<SandboxView> {
  return db.$transaction(async (tx) => {
    const r = await tx.sandbox.updateMany({ where: { id, removedAt: null }, data: { removedAt: new Date(), removedReason: reason.slice(0, 200), sourceAddress: null, sourceAddressV6: null } });
    const row = await tx.sandbox.findUnique({ where: { id }, select: sandboxSelect });
    if (!row) throw new AppError("NOT_FOUND", "No such sandbox.");
    if (r.count === 1) {
      await recordAuditEvent(tx, { type, actor, agentId: row.task.agent.id, taskId: row.taskId, outcome: "deny", reason, data: { sandboxId: row.id, name: row.name, kind: row.kind, addresses: row.addresses, blockedAttempts: row.blockedAttempts } });
    }
    return row;
  });
}

export function actorLabel(actor: Actor): string {
  return actor.kind === "user" ? actor.email : actor.kind === "api_key" ? `api-key:${actor.apiKeyId}` : `system:${actor.label}`;
}

export const SANDBOX_SELECT = sandboxSelect;

export interface SandboxEvent {
  id: string;
  at: Date;
  type: string;
  outcome: string | null;
  reason: string | null;
  sandboxId: string | null;
}

/** A task's sandbox lifecycle and activity (started, stopped, removed, verify, blocked attempts, DNS), newest first. */
export async function listSandboxEvents(db: Db, actor: Actor, taskId: string, take = 50): Promise<SandboxEvent[]> {
  assertCan(actor, "read");
  if (!uuid.safeParse(taskId).success) return [];
  const rows = await db.auditEvent.findMany({
    where: { taskId, type: { startsWith: "sandbox." } },
    orderBy: { id: "desc" },
    take,
    select: { id: true, at: true, type: true, outcome: true, reason: true, data: true },
  });
  return rows.map((r) => ({ id: r.id.toString(), at: r.at, type: r.type, outcome: r.outcome, reason: r.reason, sandboxId: typeof (r.data as { sandboxId?: unknown })?.sandboxId === "string" ? (r.data as { sandboxId: string }).sandboxId : null }));
}
