import type { Logger } from "@/lib/log";
import { compilePolicy, type CompiledPolicy } from "@/lib/policy/compiled";
import { parsePolicy } from "@/lib/policy/parse";
import type { Inventory } from "@/lib/semantics/inventory";
import type { ServiceRegistry } from "@/lib/semantics/registry";
import { buildRegistry } from "@/lib/services/registry-source";
import type { PolicyVersion, SnapshotTask } from "../policy/snapshot";

function sameRegistrySource(a: PolicyVersion, b: PolicyVersion): boolean {
  if (a.inventoryYaml !== b.inventoryYaml || a.services.length !== b.services.length) return false;
  return a.services.every((s, i) => s.name === b.services[i]?.name && s.descriptorYaml === b.services[i]?.descriptorYaml);
}

/**
 * What the request path needs from a policy snapshot, prepared once per snapshot: the service
 * registry (built-ins plus custom services), the environment inventory, and each task's compiled
 * policy (compiled lazily, cached by task and policy version).
 */
export class EnforcementState {
  readonly registry: ServiceRegistry;
  readonly inventory: Inventory;
  private readonly compiled = new Map<string, { version: number; policy: CompiledPolicy | null; error?: string }>();

  constructor(
    readonly snapshot: PolicyVersion,
    log: Logger,
    previous?: EnforcementState,
  ) {
    // Custom services and the inventory are parsed when they change, not on every snapshot (a
    // task, agent or token change leaves them as they were).
    const sameSource = previous !== undefined && sameRegistrySource(previous.snapshot, snapshot);
    if (sameSource) {
      this.registry = previous.registry;
      this.inventory = previous.inventory;
    } else {
      const built = buildRegistry(snapshot.services, snapshot.inventoryYaml);
      for (const bad of built.problems.services) log.error({ service: bad.name, errors: bad.errors }, "custom service is invalid and was left out; its hosts are unknown services");
      if (built.problems.conflict) log.error({ err: built.problems.conflict }, "custom services conflict; enforcing with built-in services only");
      if (built.problems.inventory) log.error({ errors: built.problems.inventory }, "inventory is invalid; every resource counts as production");
      this.registry = built.registry;
      this.inventory = built.inventory;
    }
    // Keep compiled policies whose version did not change, while the services and inventory they
    // were checked against did not change either.
    if (previous && sameSource) {
      for (const [taskId, entry] of previous.compiled) {
        const task = snapshot.tasks.get(taskId);
        if (task && task.policyVersion === entry.version) this.compiled.set(taskId, entry);
      }
    }
  }

  /**
   * The task's compiled policy, or an error string when it cannot be used (then: deny). A policy
   * that names a service, environment or operation the current registry and inventory do not
   * have (a custom service deleted, an environment removed after the task was created) cannot be
   * used either: its rules no longer mean what they said, so every request of the task is refused
   * with `policy_invalid` until the policy is fixed or the name comes back. Fail closed, visibly.
   */
  policyFor(task: SnapshotTask): { policy: CompiledPolicy } | { error: string } {
    let entry = this.compiled.get(task.id);
    if (!entry || entry.version !== task.policyVersion) {
      const parsed = parsePolicy(task.policyYaml, { references: { registry: this.registry, inventory: this.inventory } });
      entry = parsed.ok
        ? { version: task.policyVersion, policy: compilePolicy(parsed.policy) }
        : { version: task.policyVersion, policy: null, error: parsed.errors.map((e) => `${e.path}: ${e.message}`).join("; ") };
      this.compiled.set(task.id, entry);
    }
    return entry.policy ? { policy: entry.policy } : { error: entry.error ?? "invalid policy" };
  }
}

