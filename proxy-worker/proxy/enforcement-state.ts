import type { Logger } from "@/lib/log";
import { compilePolicy, type CompiledPolicy } from "@/lib/policy/compiled";
import { parsePolicy } from "@/lib/policy/parse";
import type { Inventory } from "@/lib/semantics/inventory";
import type { ServiceRegistry } from "@/lib/semantics/registry";
import { buildRegistry } from "@/lib/services/registry-source";
import type { CredentialSet } from "@/lib/vault/load-for-injection";
import { NO_RETIRED_SECRETS, type RetiredSecretSet } from "@/lib/vault/retired-secrets";
import type { PolicyVersion, SnapshotTask } from "../policy/snapshot";
import type { LeafCertificateCache } from "../tls/leaf-cache";

function sameRegistrySource(a: PolicyVersion, b: PolicyVersion): boolean {
  if (a.inventoryYaml !== b.inventoryYaml || a.services.length !== b.services.length) return false;
  return a.services.every((s, i) => s.name === b.services[i]?.name && s.descriptorYaml === b.services[i]?.descriptorYaml);
}

/** What a state holds besides the policy version it was built from. */
export interface EnforcementExtras {
  /** Upstream credentials, decrypted, by service key (the vault's state when last loaded). */
  credentials: CredentialSet;
  /**
   * Secrets credentials no longer inject (rotated away, deleted), loaded with them: only ever
   * redacted (lib/vault/retired-secrets.ts). None when not given.
   */
  retired?: RetiredSecretSet;
  /** Why the credentials could not be reloaded (the previous set stays in force), or null. */
  credentialError: string | null;
  /** Leaf certificates for interception, issued by the CA in force (a rotation brings a new cache). */
  leaves: LeafCertificateCache;
  caId: string | null;
}

/**
 * Everything the request path enforces from, for one policy version: the snapshot read from
 * PostgreSQL, the service registry (built-ins plus custom services) matched once per request,
 * the environment inventory, each task's compiled policy, the upstream credentials and the
 * interception CA's leaves. Built once and never changed: a new version, a credential reload or
 * a CA rotation builds a new state, which the worker swaps in whole, so a request judged by one
 * state never sees half of the next. (Policies are compiled on first use and memoised per task
 * and policy version; that is a cache of a pure function, not a change of what the state says.)
 */
export class EnforcementState {
  readonly registry: ServiceRegistry;
  readonly inventory: Inventory;
  readonly credentials: CredentialSet;
  readonly retired: RetiredSecretSet;
  readonly credentialError: string | null;
  readonly leaves: LeafCertificateCache;
  readonly caId: string | null;
  private readonly compiled = new Map<string, { version: number; policy: CompiledPolicy | null; error?: string }>();

  constructor(
    readonly snapshot: PolicyVersion,
    extras: EnforcementExtras,
    private readonly log: Logger,
    previous?: EnforcementState,
  ) {
    this.credentials = extras.credentials;
    this.retired = extras.retired ?? NO_RETIRED_SECRETS;
    this.credentialError = extras.credentialError;
    this.leaves = extras.leaves;
    this.caId = extras.caId;
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

  /** The same policy version with other credentials or another CA: a new state, sharing what did not change. */
  with(extras: Partial<EnforcementExtras>): EnforcementState {
    return new EnforcementState(this.snapshot, { credentials: this.credentials, retired: this.retired, credentialError: this.credentialError, leaves: this.leaves, caId: this.caId, ...extras }, this.log, this);
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

