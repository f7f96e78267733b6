/**
 * The privileged half of layer 3 (`bulkhead sandbox run`): reserve a slot of the address pool by
 * inserting the sandbox row (unique addresses make two launchers race safely), build the network
 * (fence first), and on teardown undo all of it. Also removes this instance's leftovers after a
 * crash: namespaces whose launcher is gone, orphaned interfaces and rows; never another instance's.
 * Building, tearing down and cleaning up each hold the instance's lock (instance-lock.ts), so a
 * cleanup only ever sees sandboxes that are whole (row, network, folder and launcher file) or gone.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { IsolationConfig } from "@/lib/config/isolation";
import type { Db } from "@/lib/db/client";
import type { Actor } from "@/lib/auth/actor";
import { recordAuditEvent } from "@/lib/audit/record";
import { uuidSchema } from "@/lib/agents/ids";
import { actorLabel, markSandboxRemoved } from "@/lib/sandboxes/sandboxes";
import type { RecordedLimits, SandboxLimits } from "@/lib/sandboxes/limits";
import { cgroupRecord, createSandboxCgroup, describeLayout, listOwnCgroups, ownCgroupLayout, planSandboxCgroup, removeSandboxCgroup, type CgroupLayout, type SandboxCgroup } from "./cgroup";
import { IsolationError, requireNetAdmin, run } from "./exec";
import { withInstanceLock } from "./instance-lock";
import { removeFenceIfUnused } from "./fence";
import { createSandboxNetwork, destroySandboxNetwork, listOwnNetwork, sandboxRunDir } from "./network";
import { cgroupNameOf, netnsOfCgroup, netnsPrefix, sandboxNames, slotOfInterface, type SandboxNames } from "./names";
import { freeSlot, poolSize, slotAddresses, slotOfAddress, type SlotAddresses } from "./pool";

export interface LaunchedSandbox {
  id: string;
  instanceId: string;
  taskId: string;
  agentId: string;
  expiresAt: Date;
  names: SandboxNames;
  addresses: SlotAddresses;
  runDir: string;
  caFile: string;
  /** What it may take: tmpfs sizes always; memory and processes unless turned off (null). */
  limits: SandboxLimits;
  /** Its cgroup (memory and process limits), or null when those are off. */
  cgroup: SandboxCgroup | null;
  /** How the memory and process limits are applied: "cgroup v1", "cgroup v2" or "off". */
  enforcedBy: string;
}

function startTimeOf(pid: number): string | null {
  try {
    // Field 22 of /proc/PID/stat (after the parenthesised command name) is the start time.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Is the launcher that made this namespace still running? (pid plus start time: no pid reuse.) */
export function launcherAlive(netns: string): boolean {
  const file = path.join(sandboxRunDir(netns), "launcher");
  if (!existsSync(file)) return false;
  const [pid, start] = readFileSync(file, "utf8").trim().split(" ");
  return pid !== undefined && start !== undefined && startTimeOf(Number(pid)) === start;
}

function slotOfNetns(config: IsolationConfig, netns: string): number | null {
  const rest = netns.slice(netnsPrefix(config.instanceId).length);
  const slot = Number(rest.split("-")[0]);
  return Number.isInteger(slot) ? slot : null;
}

/** Removes what a crashed launcher of THIS instance left behind. Returns what was removed. */
export async function cleanupLeftovers(db: Db, config: IsolationConfig, actor: Actor): Promise<string[]> {
  requireNetAdmin("cleaning up sandboxes");
  return withInstanceLock(config.instanceId, "cleaning up sandboxes", () => removeLeftovers(db, config, actor));
}

async function removeLeftovers(db: Db, config: IsolationConfig, actor: Actor): Promise<string[]> {
  const removed: string[] = [];
  const { netns, hostIfs } = await listOwnNetwork(config.instanceId);
  const kept = new Set<string>();
  for (const name of netns) {
    if (launcherAlive(name)) {
      kept.add(name);
      continue;
    }
    const slot = slotOfNetns(config, name) ?? -1;
    await destroySandboxNetwork({ netns: name, hostIf: `bh${config.instanceId}h${slot}`, sandboxIf: `bh${config.instanceId}s${slot}` });
    removed.push(name);
  }
  const keptSlots = new Set([...kept].map((n) => slotOfNetns(config, n)));
  for (const ifname of hostIfs) {
    if (keptSlots.has(slotOfInterface(config.instanceId, ifname))) continue;
    await run("ip", ["link", "del", ifname]).catch(() => undefined);
    if (!removed.includes(ifname)) removed.push(ifname);
  }
  // Cgroups of dead sandboxes whose namespace is already gone (a launcher killed in its teardown).
  const layout = ownCgroupLayout({ enable: false });
  if (!("unusable" in layout)) {
    for (const { name, cgroup } of listOwnCgroups(config.instanceId, layout)) {
      const owner = netnsOfCgroup(config.instanceId, name);
      if (owner && kept.has(owner)) continue;
      await removeSandboxCgroup(cgroup);
      removed.push(name);
    }
  }
  const rows = await db.sandbox.findMany({ where: { instanceId: config.instanceId, kind: "netns", removedAt: null }, select: { id: true, name: true } });
  for (const row of rows) {
    if (kept.has(row.name)) continue;
    await markSandboxRemoved(db, actor, row.id, "left over from a crash of its launcher; cleaned up", "sandbox.removed");
    if (!removed.includes(row.name)) removed.push(row.name);
  }
  return removed;
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: string }).code === "P2002";
}

/**
 * Where the sandbox's memory and process limits will live, checked before anything is made: a
 * security team would rather a launch refused than a sandbox that can take the machine, so
 * without a usable cgroup the launch fails unless the limits were turned off by name.
 */
export function resourceLimitLayout(limits: SandboxLimits): CgroupLayout | null {
  if (limits.memoryBytes === null || limits.pids === null) return null;
  const layout = ownCgroupLayout();
  if ("unusable" in layout) {
    throw new IsolationError(
      `refusing to start a sandbox without its memory and process limits: no cgroup can hold them here (${layout.unusable}). Run the launcher as root where the cgroup v2 memory and pids controllers (or the v1 memory and pids hierarchies) are mounted writable, or run without those limits on purpose with --no-resource-limits (BULKHEAD_SANDBOX_RESOURCE_LIMITS=off); the tmpfs sizes apply either way. Nothing was created.`,
      "limits_unavailable",
    );
  }
  return layout;
}

export async function launchSandbox(db: Db, config: IsolationConfig, actor: Actor, taskId: string, caPem: string, limits: SandboxLimits = config.limits): Promise<LaunchedSandbox> {
  requireNetAdmin("bulkhead sandbox run");
  const layout = resourceLimitLayout(limits);
  // A task that does not exist (an id mistyped, or not an id at all) is said so, not taken for an
  // ended one; an id that is not a uuid never reaches the query (Prisma's refusal is no sentence).
  const exists = uuidSchema.safeParse(taskId).success && (await db.task.count({ where: { id: taskId } })) > 0;
  if (!exists) throw new IsolationError(`no such task: ${taskId.length > 40 ? `${taskId.slice(0, 40)}…` : taskId} (bulkhead task list shows them)`, "task_unknown");
  const task = await db.task.findFirst({ where: { id: taskId, status: "active", expiresAt: { gt: new Date() }, agent: { status: "active" } }, select: { id: true, agentId: true, expiresAt: true } });
  if (!task) throw new IsolationError(`task ${taskId} is not active (ended, expired, revoked, or its agent is suspended)`, "task_inactive");
  // Up to the launcher file, which makes it a live sandbox to every cleanup, under the lock.
  const resources = { limits, layout, enforcedBy: layout ? describeLayout(layout).split(" (")[0]! : "off" };
  return withInstanceLock(config.instanceId, "bulkhead sandbox run", () => buildSandbox(db, config, actor, task, caPem, resources));
}

interface Resources {
  limits: SandboxLimits;
  layout: CgroupLayout | null;
  enforcedBy: string;
}

async function buildSandbox(db: Db, config: IsolationConfig, actor: Actor, task: { id: string; agentId: string; expiresAt: Date }, caPem: string, resources: Resources): Promise<LaunchedSandbox> {
  const recorded: RecordedLimits = { ...resources.limits, enforcedBy: resources.enforcedBy };
  for (let attempt = 0; attempt < 8; attempt++) {
    // Either address of a slot taken makes the slot taken: an external sandbox (registered by
    // address) may hold only one of them, and the insert would fail on it every time.
    const live = await db.sandbox.findMany({ where: { removedAt: null }, select: { sourceAddress: true, sourceAddressV6: true } });
    const used = new Set<number>();
    for (const r of live) {
      for (const address of [r.sourceAddress, r.sourceAddressV6]) {
        const slot = address ? slotOfAddress(config, address) : null;
        if (slot !== null) used.add(slot);
      }
    }
    for (const ifname of (await listOwnNetwork(config.instanceId)).hostIfs) {
      const slot = slotOfInterface(config.instanceId, ifname);
      if (slot !== null) used.add(slot);
    }
    const slot = freeSlot(config, used);
    if (slot === null) {
      throw new IsolationError(
        `the sandbox address pool ${config.poolV4.network}/${config.poolV4.prefix} is exhausted (${poolSize(config)} sandboxes); stop one (bulkhead sandbox list, bulkhead sandbox stop ID) or set BULKHEAD_SANDBOX_POOL_V4 to a larger range. Nothing was created.`,
        "pool_exhausted",
      );
    }
    const addresses = slotAddresses(config, slot);
    const names = sandboxNames(config.instanceId, slot, randomBytes(4).toString("hex"));
    let id: string;
    try {
      id = await db.$transaction(async (tx) => {
        const row = await tx.sandbox.create({
          data: { taskId: task.id, name: names.netns, kind: "netns", sourceAddress: addresses.v4, sourceAddressV6: addresses.v6, addresses: `${addresses.v4} ${addresses.v6}`, instanceId: config.instanceId, createdBy: actorLabel(actor), limits: { ...recorded } },
          select: { id: true },
        });
        await recordAuditEvent(tx, { type: "sandbox.started", actor, agentId: task.agentId, taskId: task.id, outcome: "allow", reason: `sandbox ${names.netns} started at ${addresses.v4} and ${addresses.v6}`, data: { sandboxId: row.id, kind: "netns", netns: names.netns, addresses: `${addresses.v4} ${addresses.v6}`, instanceId: config.instanceId, limits: { ...recorded } } });
        return row.id;
      });
    } catch (error) {
      if (isUniqueViolation(error)) continue; // another launcher took this slot first
      throw error;
    }
    const runDir = sandboxRunDir(names.netns);
    const caFile = path.join(runDir, "ca-bundle.pem");
    let cgroup: SandboxCgroup | null = null;
    try {
      await createSandboxNetwork(config, names, addresses);
      await mkdir(runDir, { recursive: true, mode: 0o755 });
      // Where the sandbox's own home is mounted (session.ts); empty and root's outside it.
      await mkdir(path.join(runDir, "home"), { mode: 0o755 });
      if (resources.layout && resources.limits.memoryBytes !== null && resources.limits.pids !== null) {
        const planned = planSandboxCgroup(resources.layout, cgroupNameOf(config.instanceId, names.netns));
        // Where it is, first: for teardown and for the cleanup of a launcher that dies (network.ts).
        await writeFile(cgroupRecord(runDir), JSON.stringify(planned), { mode: 0o644 });
        await createSandboxCgroup(planned, { memoryBytes: resources.limits.memoryBytes, pids: resources.limits.pids });
        cgroup = planned;
      }
      await writeFile(path.join(runDir, "launcher"), `${process.pid} ${startTimeOf(process.pid) ?? "?"}\n`, { mode: 0o644 });
      const system = existsSync("/etc/ssl/certs/ca-certificates.crt") ? readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8") : "";
      // Bulkhead's CA first (intercepted TLS), then the system's (passthrough services present their own).
      await writeFile(caFile, `${caPem.trim()}\n${system}`, { mode: 0o644 });
    } catch (error) {
      if (cgroup) await removeSandboxCgroup(cgroup).catch(() => undefined);
      await destroySandboxNetwork(names).catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      await markSandboxRemoved(db, actor, id, `could not be created: ${message}`.slice(0, 200), "sandbox.removed");
      throw error;
    }
    return { id, instanceId: config.instanceId, taskId: task.id, agentId: task.agentId, expiresAt: task.expiresAt, names, addresses, runDir, caFile, limits: resources.limits, cgroup, enforcedBy: resources.enforcedBy };
  }
  throw new IsolationError("could not reserve a sandbox address after several attempts (many launchers at once?); try again", "pool_contended");
}

/** Undoes a sandbox: processes killed, network removed, binding cleared and audited. Idempotent. */
export async function teardownSandbox(db: Db, actor: Actor, sandbox: LaunchedSandbox, reason: string): Promise<void> {
  // Under the lock: a cleanup meanwhile would find the row live and its namespace gone, and remove
  // it as a crash's leftover under a reason that is not this one.
  await withInstanceLock(sandbox.instanceId, "removing a sandbox", async () => {
    try {
      await destroySandboxNetwork(sandbox.names);
    } finally {
      // Also when a part would not go (a cgroup still busy): the binding ends; cleanup retries the rest.
      await markSandboxRemoved(db, actor, sandbox.id, reason, "sandbox.removed");
    }
  });
}

/**
 * The instance's fence (and the gateway addresses, once no Bulkhead fence is left) when no sandbox
 * namespace of the instance exists. Under the lock: a launcher installs the fence and then creates
 * its namespace, and a removal between the two would leave that sandbox without a fence.
 */
export async function removeFenceWithoutSandboxes(config: IsolationConfig): Promise<string[]> {
  return withInstanceLock(config.instanceId, "removing the unused fence", async () => removeFenceIfUnused(config, (await listOwnNetwork(config.instanceId)).netns));
}
