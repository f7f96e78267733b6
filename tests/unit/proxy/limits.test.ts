import { EventEmitter } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { ClientLimits } from "@/proxy-worker/proxy/limits";

describe("per-task and per-agent limits", () => {
  let now = 0;
  let limits: ClientLimits;
  const make = (config: Partial<ConstructorParameters<typeof ClientLimits>[0]> = {}) =>
    (limits = new ClientLimits({ taskMaxConnections: 2, agentMaxConnections: 3, taskRequestsPerSecond: 4, agentRequestsPerSecond: 6, ...config }, () => now));
  const task = (taskId: string, agentId = "agent-1") => ({ taskId, agentId });
  afterEach(() => limits.close());

  it("passes a burst of one second's worth, refuses beyond it, and refills with time", () => {
    make();
    const outcomes = Array.from({ length: 6 }, () => limits.admit(task("t1"))?.code ?? "ok");
    expect(outcomes).toEqual(["ok", "ok", "ok", "ok", "task_rate_limited", "task_rate_limited"]);
    now += 500;
    expect(Array.from({ length: 3 }, () => limits.admit(task("t1"))?.code ?? "ok")).toEqual(["ok", "ok", "task_rate_limited"]);
  });

  it("limits the agent across its tasks, without charging a task for a refused request", () => {
    make();
    const codes = [task("t1"), task("t2"), task("t1"), task("t2"), task("t1"), task("t2"), task("t1")].map((t) => limits.admit(t)?.code ?? "ok");
    expect(codes).toEqual(["ok", "ok", "ok", "ok", "ok", "ok", "agent_rate_limited"]);
    expect(limits.admit(task("t3", "agent-2"))).toBeNull();
  });

  it("counts a connection once per task until it closes", () => {
    make({ taskRequestsPerSecond: 1000, agentRequestsPerSecond: 1000 });
    const a = new EventEmitter();
    const b = new EventEmitter();
    const c = new EventEmitter();
    expect(limits.admit(task("t1"), a)).toBeNull();
    expect(limits.admit(task("t1"), a)).toBeNull(); // same connection: not counted again
    expect(limits.admit(task("t1"), b)).toBeNull();
    expect(limits.admit(task("t1"), c)?.code).toBe("task_connection_limit");
    a.emit("close");
    expect(limits.admit(task("t1"), c)).toBeNull();
    const d = new EventEmitter();
    expect(limits.admit(task("t2"), d)).toBeNull(); // the agent's third
    expect(limits.admit(task("t3"), new EventEmitter())?.code).toBe("agent_connection_limit");
    expect(limits.admit(task("t3"), d)).toBeNull(); // same connection, same agent: not a new agent connection
  });
});
