/**
 * What verifiers must know about revocations, kept in memory as Sets so that every request can
 * consult it in well under a microsecond. The worker feeds it from Postgres (a snapshot at start
 * and on reconnect, LISTEN/NOTIFY in between).
 */

export interface RevocationView {
  isTaskRevoked(taskId: string): boolean;
  isAgentSuspended(agentId: string): boolean;
  isJtiRevoked(jti: string): boolean;
  /**
   * Optional: a number that changes whenever any answer above could change. The token cache then
   * re-asks only after it changed; a view without it is asked on every request.
   */
  readonly generation?: number;
}

/**
 * `until` lets entries be pruned once every token they could apply to has expired;
 * omitted means "keep until replaced".
 */
export interface RevocationSnapshot {
  revokedTasks: Iterable<string | { id: string; until?: Date | null }>;
  suspendedAgents: Iterable<string>;
  revokedJtis: Iterable<string | { id: string; until?: Date | null }>;
}

type Expiring = Map<string, number>;

function put(map: Expiring, id: string, until: Date | null | undefined): void {
  const next = until ? until.getTime() : Number.POSITIVE_INFINITY;
  const prev = map.get(id);
  // Revocations only ever widen: a later message cannot shorten an existing one.
  if (prev === undefined || next > prev) map.set(id, next);
}

function fill(entries: Iterable<string | { id: string; until?: Date | null }>): Expiring {
  const map: Expiring = new Map();
  for (const e of entries) {
    if (typeof e === "string") put(map, e, null);
    else put(map, e.id, e.until);
  }
  return map;
}

export class RevocationSet implements RevocationView {
  private tasks: Expiring = new Map();
  private agents = new Set<string>();
  private jtis: Expiring = new Map();
  private generationCounter = 0;

  /** Bumped on every change; lets callers tell whether anything changed since they last looked. */
  get generation(): number {
    return this.generationCounter;
  }

  isTaskRevoked(taskId: string): boolean {
    return this.tasks.has(taskId);
  }

  isAgentSuspended(agentId: string): boolean {
    return this.agents.has(agentId);
  }

  isJtiRevoked(jti: string): boolean {
    return this.jtis.has(jti);
  }

  /** The task ended or was cancelled; `until` = the latest expiry of its tokens, if known. */
  revokeTask(taskId: string, until?: Date | null): void {
    put(this.tasks, taskId, until);
    this.generationCounter++;
  }

  suspendAgent(agentId: string): void {
    this.agents.add(agentId);
    this.generationCounter++;
  }

  reinstateAgent(agentId: string): void {
    this.agents.delete(agentId);
    this.generationCounter++;
  }

  /** `until` = the token's expiry, after which the entry is useless. */
  revokeJti(jti: string, until?: Date | null): void {
    put(this.jtis, jti, until);
    this.generationCounter++;
  }

  /**
   * Replaces everything with a fresh snapshot (e.g. after a LISTEN connection dropped and
   * notifications may have been missed). Built aside, then swapped.
   */
  replaceAll(snapshot: RevocationSnapshot): void {
    const tasks = fill(snapshot.revokedTasks);
    const agents = new Set(snapshot.suspendedAgents);
    const jtis = fill(snapshot.revokedJtis);
    this.tasks = tasks;
    this.agents = agents;
    this.jtis = jtis;
    this.generationCounter++;
  }

  /**
   * Drops task and jti entries whose tokens can no longer be accepted anyway. `graceSeconds`
   * must cover verifiers' clock tolerance.
   */
  prune(now: Date, graceSeconds = 5): number {
    const cutoff = now.getTime() - graceSeconds * 1000;
    let removed = 0;
    for (const map of [this.tasks, this.jtis]) {
      for (const [id, until] of map) {
        if (until < cutoff) {
          map.delete(id);
          removed++;
        }
      }
    }
    if (removed > 0) this.generationCounter++;
    return removed;
  }

  get sizes(): { tasks: number; agents: number; jtis: number } {
    return { tasks: this.tasks.size, agents: this.agents.size, jtis: this.jtis.size };
  }
}
