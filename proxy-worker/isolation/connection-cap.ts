/**
 * How many connections one sandbox may hold open to the worker, counted from the accept: before
 * anything on a connection is authenticated. Connections that never authenticate (a request head
 * or TLS handshake left unfinished stays open for the head timeout) escape the task's own budget
 * (limits.ts counts from the first authenticated request), and would otherwise let one sandbox
 * take every file descriptor of the worker, and with them every other client's connections.
 * Shared by the sandbox listener (network-namespace sandboxes) and the transparent listeners
 * (external sandboxes, bound by address).
 */
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import { ProxyRefusal } from "../proxy/errors";
import type { EnforcementState } from "../proxy/enforcement-state";
import type { RefusalAudit } from "../proxy/refusal-audit";
import type { ConnectionOwner, TaskConnectionRegistry } from "./connections";

/** Registers `socket` for its sandbox unless the sandbox already holds `cap` connections. */
export function admitWithinCap(registry: TaskConnectionRegistry, owner: ConnectionOwner, socket: Duplex, cap: number): { admitted: true } | { admitted: false; open: number } {
  const open = registry.countFor(owner.sandboxId);
  if (open >= cap) return { admitted: false, open };
  registry.add(owner, socket);
  return { admitted: true };
}

/** Closes a connection over the cap at once and audits it (the refusal audit aggregates floods). */
export function refuseOverConnectionCap(
  refusals: Pick<RefusalAudit, "record">,
  state: EnforcementState | null,
  socket: Duplex,
  owner: ConnectionOwner,
  where: { client: string; open: number; cap: number; originalDestination?: string },
): void {
  socket.destroy();
  const refusal = new ProxyRefusal("rate_limited", "sandbox_connection_limit", `the sandbox already holds ${where.open} connections through Bulkhead (the limit is ${where.cap}, BULKHEAD_TASK_MAX_CONNECTIONS); close one first`);
  const agentId = state?.snapshot.tasks.get(owner.taskId)?.agentId ?? null;
  const data = { eventId: randomUUID(), listener: "transparent", client: where.client, sandboxId: owner.sandboxId, ...(where.originalDestination ? { originalDestination: where.originalDestination } : {}) };
  refusal.context = data;
  void refusals.record(refusal, { data, auth: agentId ? { agentId, taskId: owner.taskId } : null }).catch(() => undefined);
}
