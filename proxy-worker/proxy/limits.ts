import type { ClientLimitsConfig } from "@/lib/config/worker";
import { ProxyRefusal } from "./errors";

/** A client connection that can be attributed to a task: anything that says when it closes. */
export interface Connection {
  once(event: "close", listener: () => void): unknown;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Per-task and per-agent budgets, so one agent cannot starve the others: concurrent client
 * connections (a connection counts for a task from its first authenticated request or CONNECT
 * until it closes) and requests per second (token buckets holding one second's worth, so a
 * burst of that size passes). Checked right after authentication, before the body is read.
 */
export class ClientLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly open = new Map<string, number>();
  private readonly attributed = new WeakMap<object, Set<string>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly config: ClientLimitsConfig,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.sweeper = setInterval(() => this.sweep(), 30_000);
    this.sweeper.unref();
  }

  /** Null when the request may proceed; otherwise the 429 refusal saying which budget ran out. */
  admit(auth: { taskId: string; agentId: string }, connection?: Connection): ProxyRefusal | null {
    const task = `task:${auth.taskId}`;
    const agent = `agent:${auth.agentId}`;
    if (connection) {
      const refused = this.attribute(connection, task, agent);
      if (refused) return refused;
    }
    const taskBucket = this.refill(task, this.config.taskRequestsPerSecond);
    const agentBucket = this.refill(agent, this.config.agentRequestsPerSecond);
    if (taskBucket.tokens < 1) {
      return new ProxyRefusal("rate_limited", "task_rate_limited", `the task exceeded ${this.config.taskRequestsPerSecond} requests per second; retry later`);
    }
    if (agentBucket.tokens < 1) {
      return new ProxyRefusal("rate_limited", "agent_rate_limited", `the agent exceeded ${this.config.agentRequestsPerSecond} requests per second across its tasks; retry later`);
    }
    taskBucket.tokens -= 1;
    agentBucket.tokens -= 1;
    return null;
  }

  stats(): { trackedBuckets: number; openConnections: number } {
    let connections = 0;
    for (const [key, n] of this.open) if (key.startsWith("task:")) connections += n;
    return { trackedBuckets: this.buckets.size, openConnections: connections };
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private attribute(connection: Connection, task: string, agent: string): ProxyRefusal | null {
    let keys = this.attributed.get(connection);
    if (keys?.has(task)) return null;
    const tasks = this.open.get(task) ?? 0;
    if (tasks >= this.config.taskMaxConnections) {
      return new ProxyRefusal("rate_limited", "task_connection_limit", `the task already holds ${tasks} connections through Bulkhead (the limit is ${this.config.taskMaxConnections}); close one first`);
    }
    const newAgent = !keys?.has(agent);
    const agents = this.open.get(agent) ?? 0;
    if (newAgent && agents >= this.config.agentMaxConnections) {
      return new ProxyRefusal("rate_limited", "agent_connection_limit", `the agent already holds ${agents} connections through Bulkhead across its tasks (the limit is ${this.config.agentMaxConnections}); close one first`);
    }
    if (!keys) {
      keys = new Set();
      this.attributed.set(connection, keys);
      const held = keys;
      connection.once("close", () => {
        for (const key of held) this.release(key);
        held.clear();
      });
    }
    keys.add(task);
    this.open.set(task, tasks + 1);
    if (newAgent) {
      keys.add(agent);
      this.open.set(agent, agents + 1);
    }
    return null;
  }

  private release(key: string): void {
    const n = (this.open.get(key) ?? 1) - 1;
    if (n <= 0) this.open.delete(key);
    else this.open.set(key, n);
  }

  private refill(key: string, rate: number): Bucket {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { tokens: rate, at: now };
      this.buckets.set(key, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    return bucket;
  }

  /** Buckets idle for a while are full again: forget them. */
  private sweep(): void {
    const cutoff = this.now() - 10_000;
    for (const [key, bucket] of this.buckets) if (bucket.at < cutoff) this.buckets.delete(key);
  }
}
