import { randomUUID } from "node:crypto";
import type ipaddr from "ipaddr.js";
import type { Logger } from "@/lib/log";
import { parseHost } from "@/lib/net/host";
import type { ProxyRefusal } from "./errors";
import type { AuditSink, DecisionEvent } from "./types";

/** Who a refusal concerns: the event's data (eventId, listener, client, method, url...) and, once known, the task. */
export interface RefusalSource {
  data: { eventId: string; listener: string; client: string; [field: string]: unknown };
  auth: { agentId: string; taskId: string } | null;
}

export interface RefusalAuditOptions {
  sink: AuditSink;
  log: Logger;
  /** Refusals recorded one by one per key and window; beyond it, one aggregate event per window. */
  burst: number;
  windowMs: number;
  /** Bound on tracked keys; beyond it, keys collapse to one per reason. */
  maxKeys?: number;
  /** Individual events per window across all keys (default 25 × burst): many clients at once aggregate too. */
  globalBurst?: number;
  onDecision?: (outcome: string, effect: string | null) => void;
}

interface Aggregate {
  eventId: string;
  count: number;
  firstAt: number;
  lastAt: number;
  refusal: ProxyRefusal;
  source: RefusalSource;
  samples: string[];
  attempts: number;
}

interface Window {
  start: number;
  count: number;
  aggregate: Aggregate | null;
}

const MAX_SAMPLES = 5;

/** One key per IPv4 address, and per /64 for IPv6 (a single host usually holds a whole /64). */
export function clientKey(address: string): string {
  const parsed = parseHost(address.replace(/^::ffff:(?=\d+\.)/, ""));
  if (parsed.kind !== "ip") return address.slice(0, 64);
  if (parsed.family === 4) return parsed.address;
  const groups = (parsed.ip as ipaddr.IPv6).toNormalizedString().split(":").slice(0, 4);
  return `${groups.join(":")}::/64`;
}

/** The audit event type for a refusal (one mapping, shared with the request pipeline). */
export function refusalEventType(refusal: ProxyRefusal): string {
  return refusal.kind === "identity" ? "proxy.identity_failed" : refusal.kind === "denied" ? "proxy.decision" : "proxy.rejected";
}

/**
 * Audits refusals that anyone can cause in bulk: before authentication (parse errors, bad
 * tokens, malformed CONNECT targets, dropped connections) and rate-limit refusals. Per key
 * (the client's address, or the task once authenticated) and reason, the first `burst` in a
 * window are recorded as events of their own, awaited before the refusal is sent; the rest are
 * counted into one aggregate event written when the window closes, whose id every one of those
 * refusals carries. A flood therefore costs the hash chain at most burst + 1 events per key and
 * window, and no refusal goes unrecorded. Clients are keyed by IPv4 address or IPv6 /64, and a
 * global budget of individual events per window sends everything beyond it, from any client,
 * to one aggregate per reason, so spreading a flood over many addresses does not help either.
 */
export class RefusalAudit {
  private readonly windows = new Map<string, Window>();
  private readonly pending: Aggregate[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly maxKeys: number;
  private readonly globalBurst: number;
  private global = { start: 0, count: 0 };

  constructor(private readonly o: RefusalAuditOptions) {
    this.maxKeys = o.maxKeys ?? 10_000;
    this.globalBurst = o.globalBurst ?? o.burst * 25;
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.min(o.windowMs, 5000)));
    this.timer.unref();
  }

  /** Records `refusal` (sets its auditEventId) and returns it; never throws. */
  async record(refusal: ProxyRefusal, source: RefusalSource): Promise<ProxyRefusal> {
    const now = Date.now();
    if (now - this.global.start >= this.o.windowMs) this.global = { start: now, count: 0 };
    let window = this.windowFor(this.keyOf(refusal, source), now);
    window.count++;
    this.o.onDecision?.("deny", null);
    if (window.count <= this.o.burst && this.global.count < this.globalBurst) {
      this.global.count++;
      try {
        await this.o.sink.record(this.event(refusal, source, { ...source.data, code: refusal.code, kind: refusal.kind }, refusal.reason));
        refusal.auditEventId = source.data.eventId;
      } catch {
        refusal.extra.auditWarning = "this refusal could not be recorded";
      }
      return refusal;
    }
    if (this.global.count >= this.globalBurst && window.count <= this.o.burst) window = this.windowFor(`overflow|${refusal.code}`, now);
    const aggregate = (window.aggregate ??= { eventId: randomUUID(), count: 0, firstAt: now, lastAt: now, refusal, source, samples: [], attempts: 0 });
    aggregate.count++;
    aggregate.lastAt = now;
    const sample = source.data.url ?? source.data.method;
    if (aggregate.samples.length < MAX_SAMPLES && typeof sample === "string") aggregate.samples.push(sample.slice(0, 256));
    refusal.auditEventId = aggregate.eventId;
    refusal.extra.auditAggregated = true;
    return refusal;
  }

  /** Writes every aggregate now, whether or not its window has closed (shutdown). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const window of this.windows.values()) if (window.aggregate) this.pending.push(window.aggregate);
    this.windows.clear();
    await this.writePending();
  }

  stats(): { keys: number; pendingAggregates: number } {
    let open = 0;
    for (const w of this.windows.values()) if (w.aggregate) open++;
    return { keys: this.windows.size, pendingAggregates: open + this.pending.length };
  }

  private keyOf(refusal: ProxyRefusal, source: RefusalSource): string {
    const who = source.auth ? `task:${source.auth.taskId}` : `client:${clientKey(source.data.client)}`;
    const key = `${who}|${refusal.code}`;
    return this.windows.has(key) || this.windows.size < this.maxKeys ? key : `overflow|${refusal.code}`;
  }

  private windowFor(key: string, now: number): Window {
    const current = this.windows.get(key);
    if (current && now - current.start < this.o.windowMs) return current;
    if (current?.aggregate) this.pending.push(current.aggregate);
    const fresh: Window = { start: now, count: 0, aggregate: null };
    this.windows.set(key, fresh);
    return fresh;
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    for (const [key, window] of this.windows) {
      if (now - window.start < this.o.windowMs) continue;
      if (window.aggregate) this.pending.push(window.aggregate);
      this.windows.delete(key);
    }
    await this.writePending();
  }

  private async writePending(): Promise<void> {
    const batch = this.pending.splice(0);
    for (const aggregate of batch) {
      const { refusal, source } = aggregate;
      const seconds = Math.max(1, Math.round((aggregate.lastAt - aggregate.firstAt) / 1000));
      const data = {
        ...source.data,
        eventId: aggregate.eventId,
        code: refusal.code,
        kind: refusal.kind,
        aggregated: true,
        count: aggregate.count,
        firstAt: new Date(aggregate.firstAt).toISOString(),
        lastAt: new Date(aggregate.lastAt).toISOString(),
        samples: aggregate.samples,
      };
      try {
        await this.o.sink.record(this.event(refusal, source, data, `${aggregate.count} more refusals (${refusal.code}) within ${seconds} s: ${refusal.reason}`));
      } catch (error) {
        aggregate.attempts++;
        if (aggregate.attempts < 3) this.pending.push(aggregate);
        this.o.log.error({ err: error instanceof Error ? error.message : String(error), count: aggregate.count, code: refusal.code }, "aggregated refusals could not be recorded");
      }
    }
  }

  private event(refusal: ProxyRefusal, source: RefusalSource, data: Record<string, unknown>, reason: string): DecisionEvent {
    return {
      type: refusalEventType(refusal),
      actorType: source.auth ? "agent" : "system",
      actorId: source.auth?.agentId ?? null,
      agentId: source.auth?.agentId ?? null,
      taskId: source.auth?.taskId ?? null,
      outcome: "deny",
      effect: null,
      reason: reason.slice(0, 2000),
      ruleId: null,
      data,
    };
  }
}
