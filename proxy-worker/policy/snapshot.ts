import type { Db } from "@/lib/db/client";
import type { VerificationKeyRecord } from "@/lib/identity/key-ring";
import { loadVerificationKeys } from "@/lib/identity/key-store";
import type { RevocationSnapshot } from "@/lib/identity/revocation";
import { loadRevocationSnapshot } from "@/lib/identity/revocation-source";

export interface SnapshotTask {
  id: string;
  agentId: string;
  policyYaml: string;
  policyVersion: number;
  expiresAt: Date;
}

/**
 * What the worker enforces from: the active tasks of active agents with their policies, the
 * revocations verifiers must honour, and the public signing keys. Read in one repeatable-read
 * transaction, so the parts are consistent with each other.
 */
export interface PolicySnapshot {
  /** Monotonic per worker: bumped each time a newer snapshot replaces the old one. */
  version: number;
  loadedAt: Date;
  tasks: Map<string, SnapshotTask>;
  revocation: RevocationSnapshot;
  suspendedAgents: Set<string>;
  keys: VerificationKeyRecord[];
}

export async function loadPolicySnapshot(db: Db, version: number, now = new Date()): Promise<PolicySnapshot> {
  return db.$transaction(
    async (tx) => {
      const tasks = await tx.task.findMany({
        where: { status: "active", expiresAt: { gt: now }, agent: { status: "active" } },
        select: { id: true, agentId: true, policyYaml: true, policyVersion: true, expiresAt: true },
      });
      const revocation = await loadRevocationSnapshot(tx, now);
      const keys = await loadVerificationKeys(tx);
      return {
        version,
        loadedAt: now,
        tasks: new Map(tasks.map((t) => [t.id, t])),
        revocation,
        suspendedAgents: new Set(revocation.suspendedAgents),
        keys,
      };
    },
    { isolationLevel: "RepeatableRead" },
  );
}
