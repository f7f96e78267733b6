/**
 * Sandbox activity the audit must show without being drowned: DNS queries and packets the fence
 * dropped (blocked escape attempts) are counted per sandbox and written as at most one event of
 * each kind per sandbox per interval, with counts and a bounded sample. The raw per-flow counters
 * stay in the fence (`nft list set`), so nothing is lost by aggregating.
 */
import type { Logger } from "@/lib/log";
import type { AuditSink } from "../proxy/types";
import type { DropCount } from "./fence";

const SAMPLE = 10;

interface Binding {
  sandboxId: string;
  taskId: string;
}

interface DnsTally {
  binding: Binding | null;
  source: string | null;
  answered: number;
  nxdomain: number;
  refused: number;
  /** Queries past the sandbox's rate: not answered, not decoded (resolver.ts, admit). */
  limited: number;
  names: Map<string, string>;
}

interface DropTally {
  binding: Binding | null;
  source: string;
  attempts: number;
  /** Per destination, protocol and port: packets added up over the interval's reads. */
  flows: Map<string, DropCount>;
}

const flowKey = (f: DropCount) => `${f.destination}|${f.protocol}|${f.port}`;

/**
 * Called around each flush that audits drops: `mark` before the tallies are taken, `save` with
 * its result once they are recorded (the drop reader keeps its counts only once they are audited).
 */
export interface DropCheckpoint<T = unknown> {
  mark(): T;
  save(mark: T): Promise<void>;
}

export class SandboxActivity {
  private dnsTallies = new Map<string, DnsTally>();
  private dropTallies = new Map<string, DropTally>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly audit: AuditSink,
    private readonly agentOf: (taskId: string) => string | null,
    private readonly log: Logger,
    private readonly onBlocked: (sandboxId: string, attempts: number) => Promise<void>,
    private readonly intervalMs = 2000,
    private readonly checkpoint: DropCheckpoint | null = null,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  dns(binding: Binding | null, source: string | null, outcome: "answered" | "nxdomain" | "refused" | "limited", name: string, type?: string): void {
    const key = binding?.sandboxId ?? `unbound:${source ?? "?"}`;
    let t = this.dnsTallies.get(key);
    if (!t) {
      t = { binding, source, answered: 0, nxdomain: 0, refused: 0, limited: 0, names: new Map() };
      this.dnsTallies.set(key, t);
    }
    t[outcome]++;
    if (outcome !== "limited" && t.names.size < SAMPLE) t.names.set(`${type ?? "?"} ${name.slice(0, 253)}`, outcome);
  }

  drops(binding: Binding | null, flow: DropCount, delta: number): void {
    const key = binding?.sandboxId ?? `unbound:${flow.source}`;
    let t = this.dropTallies.get(key);
    if (!t) {
      t = { binding, source: flow.source, attempts: 0, flows: new Map() };
      this.dropTallies.set(key, t);
    }
    t.attempts += delta;
    const id = flowKey(flow);
    const same = t.flows.get(id);
    if (same) same.packets += delta;
    else t.flows.set(id, { ...flow, packets: delta });
  }

  /**
   * Writes one event per tally. A tally whose event the audit refused (its log full or broken)
   * is kept for the next flush, merged with what came since, so a blocked attempt is never
   * dropped for a transient refusal; and the drop counts are then not checkpointed, so that a
   * worker that stops before the retry leaves them to be counted again by the next one.
   */
  async flush(): Promise<void> {
    const mark = this.dropTallies.size > 0 ? this.checkpoint?.mark() : undefined;
    const dns = this.dnsTallies;
    const drops = this.dropTallies;
    this.dnsTallies = new Map();
    this.dropTallies = new Map();
    for (const [key, t] of dns) {
      const limited = t.limited > 0 ? `, ${t.limited} not answered (over the sandbox's query rate)` : "";
      const recorded = await this.record("sandbox.dns", t.binding, t.refused + t.nxdomain + t.limited > 0 ? "deny" : "allow", `${t.answered} answered, ${t.nxdomain} NXDOMAIN (never resolved upstream), ${t.refused} refused${limited}`, {
        source: t.source,
        answered: t.answered,
        nxdomain: t.nxdomain,
        refused: t.refused,
        limited: t.limited,
        sample: [...t.names].map(([q, outcome]) => ({ query: q, outcome })),
      });
      if (!recorded) this.keepDns(key, t);
    }
    let allRecorded = true;
    for (const [key, t] of drops) {
      const flows = [...t.flows.values()].sort((a, b) => b.packets - a.packets);
      const recorded = await this.record("sandbox.escape_blocked", t.binding, "deny", `${t.attempts} packet(s) from the sandbox dropped by the fence`, {
        source: t.source,
        attempts: t.attempts,
        flows: flows.slice(0, SAMPLE),
        moreFlows: Math.max(0, flows.length - SAMPLE),
      });
      if (!recorded) {
        allRecorded = false;
        this.keepDrops(key, t);
        continue;
      }
      if (t.binding) await this.onBlocked(t.binding.sandboxId, t.attempts).catch((e: unknown) => this.log.warn({ err: String(e) }, "blocked-attempt counter not saved"));
    }
    if (mark !== undefined && allRecorded) await this.checkpoint?.save(mark);
  }

  /** A DNS tally back into the current interval's, added to what came since. */
  private keepDns(key: string, t: DnsTally): void {
    const now = this.dnsTallies.get(key);
    if (!now) {
      this.dnsTallies.set(key, t);
      return;
    }
    now.answered += t.answered;
    now.nxdomain += t.nxdomain;
    now.refused += t.refused;
    now.limited += t.limited;
    for (const [name, outcome] of t.names) if (now.names.size < SAMPLE) now.names.set(name, outcome);
  }

  /** A drop tally back into the current interval's, the same flow's packets added up. */
  private keepDrops(key: string, t: DropTally): void {
    const now = this.dropTallies.get(key);
    if (!now) {
      this.dropTallies.set(key, t);
      return;
    }
    now.attempts += t.attempts;
    for (const [id, f] of t.flows) {
      const same = now.flows.get(id);
      if (same) same.packets += f.packets;
      else now.flows.set(id, f);
    }
  }

  /** True once the audit took the event; false (logged) when it refused it. */
  private async record(type: string, binding: Binding | null, outcome: string, reason: string, data: Record<string, unknown>): Promise<boolean> {
    const agentId = binding ? this.agentOf(binding.taskId) : null;
    return this.audit
      .record({ type, actorType: agentId ? "agent" : "system", actorId: agentId, agentId, taskId: binding?.taskId ?? null, outcome, effect: null, reason, ruleId: null, data: { sandboxId: binding?.sandboxId ?? null, ...data } })
      .then(
        () => true,
        (e: unknown) => {
          this.log.warn({ err: String(e), type }, "sandbox activity could not be audited; kept for the next flush");
          return false;
        },
      );
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
