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
  names: Map<string, string>;
}

interface DropTally {
  binding: Binding | null;
  source: string;
  attempts: number;
  flows: DropCount[];
}

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

  dns(binding: Binding | null, source: string | null, outcome: "answered" | "nxdomain" | "refused", name: string, type?: string): void {
    const key = binding?.sandboxId ?? `unbound:${source ?? "?"}`;
    let t = this.dnsTallies.get(key);
    if (!t) {
      t = { binding, source, answered: 0, nxdomain: 0, refused: 0, names: new Map() };
      this.dnsTallies.set(key, t);
    }
    t[outcome]++;
    if (t.names.size < SAMPLE) t.names.set(`${type ?? "?"} ${name.slice(0, 253)}`, outcome);
  }

  drops(binding: Binding | null, flow: DropCount, delta: number): void {
    const key = binding?.sandboxId ?? `unbound:${flow.source}`;
    let t = this.dropTallies.get(key);
    if (!t) {
      t = { binding, source: flow.source, attempts: 0, flows: [] };
      this.dropTallies.set(key, t);
    }
    t.attempts += delta;
    t.flows.push({ ...flow, packets: delta });
  }

  async flush(): Promise<void> {
    const mark = this.dropTallies.size > 0 ? this.checkpoint?.mark() : undefined;
    const dns = this.dnsTallies;
    const drops = this.dropTallies;
    this.dnsTallies = new Map();
    this.dropTallies = new Map();
    for (const t of dns.values()) {
      await this.record("sandbox.dns", t.binding, t.refused + t.nxdomain > 0 ? "deny" : "allow", `${t.answered} answered, ${t.nxdomain} NXDOMAIN (never resolved upstream), ${t.refused} refused`, {
        source: t.source,
        answered: t.answered,
        nxdomain: t.nxdomain,
        refused: t.refused,
        sample: [...t.names].map(([q, outcome]) => ({ query: q, outcome })),
      });
    }
    for (const t of drops.values()) {
      t.flows.sort((a, b) => b.packets - a.packets);
      await this.record("sandbox.escape_blocked", t.binding, "deny", `${t.attempts} packet(s) from the sandbox dropped by the fence`, {
        source: t.source,
        attempts: t.attempts,
        flows: t.flows.slice(0, SAMPLE),
        moreFlows: Math.max(0, t.flows.length - SAMPLE),
      });
      if (t.binding) await this.onBlocked(t.binding.sandboxId, t.attempts).catch((e: unknown) => this.log.warn({ err: String(e) }, "blocked-attempt counter not saved"));
    }
    if (mark !== undefined) await this.checkpoint?.save(mark);
  }

  private async record(type: string, binding: Binding | null, outcome: string, reason: string, data: Record<string, unknown>): Promise<void> {
    const agentId = binding ? this.agentOf(binding.taskId) : null;
    await this.audit
      .record({ type, actorType: agentId ? "agent" : "system", actorId: agentId, agentId, taskId: binding?.taskId ?? null, outcome, effect: null, reason, ruleId: null, data: { sandboxId: binding?.sandboxId ?? null, ...data } })
      .catch((e: unknown) => this.log.warn({ err: String(e), type }, "sandbox activity could not be audited"));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
