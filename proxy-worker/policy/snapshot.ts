import type { Db } from "@/lib/db/client";
import type { VerificationKeyRecord } from "@/lib/identity/key-ring";
import { loadVerificationKeys } from "@/lib/identity/key-store";
import type { RevocationSnapshot } from "@/lib/identity/revocation";
import { loadRevocationSnapshot } from "@/lib/identity/revocation-source";
import { parseCanonicalScope, type TaskScope } from "@/lib/identity/scope";
import { INVENTORY_SETTING } from "@/lib/services/inventory";

export interface SnapshotTask {
  id: string;
  agentId: string;
  policyYaml: string;
  policyVersion: number;
  expiresAt: Date;
  /** Layer 1 bound (parsed once per snapshot); null when the stored scope is not valid: then nothing is allowed. */
  scope: TaskScope | null;
}

export interface SnapshotService {
  name: string;
  descriptorYaml: string;
}

/**
 * One version of what the worker enforces from, as read from PostgreSQL: the active tasks of
 * active agents with their policies, the revocations verifiers must honour, the public signing
 * keys, custom services, the inventory and sandbox bindings. A full load reads it in one
 * repeatable-read transaction, so the parts are consistent with each other; an incremental
 * change derives the next version from this one (policy/incremental.ts). Never changed once
 * built: the worker's EnforcementState (proxy/enforcement-state.ts) is built from it.
 */
export interface PolicyVersion {
  /** Monotonic per worker: bumped each time a newer snapshot replaces the old one. */
  version: number;
  loadedAt: Date;
  tasks: Map<string, SnapshotTask>;
  revocation: RevocationSnapshot;
  suspendedAgents: Set<string>;
  keys: VerificationKeyRecord[];
  /** Custom service descriptors (YAML, one document per service). */
  services: SnapshotService[];
  /** The environment inventory (YAML), or null when none is configured. */
  inventoryYaml: string | null;
  /** Transparent listener: sandbox source address (IPv4 or IPv6) → task id. */
  sandboxes: Map<string, string>;
  /** Sandbox source address → the live sandbox bound there (layer 3). */
  sandboxBindings: Map<string, { sandboxId: string; taskId: string }>;
  /** The interception CA in force (a change means it was rotated). */
  caId: string | null;
  /** Every unexpired token Bulkhead issued (revoked ones too: revocation says those): jti → its task and agent. */
  issuedJtis: Map<string, IssuedTokenRecord>;
  /**
   * What changed since the previous snapshot: "all" after a full load (start, reconcile, a
   * change that is not applied row by row), else the parts an incremental change touched; the
   * services, inventory, sandboxes, keys and CA are then the previous snapshot's own objects.
   */
  changed: "all" | ReadonlySet<SnapshotPart>;
}

/** The parts a snapshot applied row by row may change (proxy-worker/policy/incremental.ts). */
export type SnapshotPart = "tasks" | "revocations" | "tokens" | "credentials";

export interface IssuedTokenRecord {
  taskId: string;
  agentId: string;
  /** Set when read from the database for a jti the snapshot did not have, and the row is revoked. */
  revokedAt?: Date | null;
  expiresAt?: Date;
}

export async function loadPolicyVersion(db: Db, version: number, now = new Date()): Promise<PolicyVersion> {
  return db.$transaction(
    async (tx) => {
      const tasks = await tx.task.findMany({
        where: { status: "active", expiresAt: { gt: now }, agent: { status: "active" } },
        select: { id: true, agentId: true, policyYaml: true, policyVersion: true, expiresAt: true, scope: true },
      });
      const revocation = await loadRevocationSnapshot(tx, now);
      const keys = await loadVerificationKeys(tx);
      const services = await tx.service.findMany({ select: { name: true, descriptorYaml: true }, orderBy: { name: "asc" } });
      const inventory = await tx.setting.findUnique({ where: { key: INVENTORY_SETTING } });
      const sandboxes = await tx.sandbox.findMany({ where: { removedAt: null }, select: { id: true, sourceAddress: true, sourceAddressV6: true, taskId: true } });
      const bindings = sandboxes.flatMap((b) => [b.sourceAddress, b.sourceAddressV6].filter((a): a is string => a !== null).map((a) => [a, { sandboxId: b.id, taskId: b.taskId }] as const));
      const ca = await tx.certificateAuthority.findFirst({ where: { retiredAt: null }, orderBy: { createdAt: "desc" }, select: { id: true } });
      const issued = await tx.issuedToken.findMany({ where: { expiresAt: { gt: now } }, select: { jti: true, taskId: true, agentId: true } });
      return {
        version,
        loadedAt: now,
        tasks: new Map(tasks.map((t) => [t.id, { ...t, scope: parseCanonicalScope(t.scope) }])),
        revocation,
        suspendedAgents: new Set(revocation.suspendedAgents),
        keys,
        services,
        inventoryYaml: typeof inventory?.value === "string" ? inventory.value : null,
        sandboxes: new Map(bindings.map(([a, b]) => [a, b.taskId])),
        sandboxBindings: new Map(bindings),
        caId: ca?.id ?? null,
        issuedJtis: new Map(issued.map((t) => [t.jti, { taskId: t.taskId, agentId: t.agentId }])),
        changed: "all" as const,
      };
    },
    { isolationLevel: "RepeatableRead" },
  );
}
