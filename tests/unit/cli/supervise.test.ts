import { EventEmitter } from "node:events";
import type { ChildProcess } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { superviseWorker } from "@/cli/runtime/supervise";

/** A stand-in for a forked worker: says ready, exits when told or killed. */
class FakeWorker extends EventEmitter {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  constructor(readonly env: Record<string, string>) {
    super();
  }
  ready() {
    this.emit("message", { type: "ready" });
  }
  crash(how: { code?: number; signal?: NodeJS.Signals }) {
    this.exitCode = how.code ?? null;
    this.signalCode = how.signal ?? null;
    this.emit("exit", this.exitCode, this.signalCode);
  }
  kill(signal: NodeJS.Signals = "SIGTERM") {
    queueMicrotask(() => this.crash({ signal }));
    return true;
  }
}

describe("the launcher's worker supervisor", () => {
  let spawned: FakeWorker[];
  let said: string[];
  let gaveUp: string[];
  const backoff = { initialMs: 500, maxMs: 4000, stableAfterMs: 60_000 };
  const start = () =>
    superviseWorker({
      spawn: (env) => {
        const w = new FakeWorker(env);
        spawned.push(w);
        return w as unknown as ChildProcess;
      },
      say: (line) => said.push(line),
      onGiveUp: (reason) => gaveUp.push(reason),
      backoff,
    });

  beforeEach(() => {
    vi.useFakeTimers();
    spawned = [];
    said = [];
    gaveUp = [];
  });
  afterEach(() => vi.useRealTimers());

  it("restarts a crashed worker with exponential backoff, capped, and tells the new one why", async () => {
    const supervisor = start();
    spawned[0]!.ready();
    await supervisor.ready();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      spawned.at(-1)!.crash(i === 0 ? { signal: "SIGKILL" } : { code: 1 });
      const line = said.at(-1)!;
      delays.push(Number(/restarting in (\d+) ms/.exec(line)![1]));
      expect(line).toContain(`(restart ${i + 1})`);
      vi.advanceTimersByTime(delays.at(-1)!);
      expect(spawned).toHaveLength(i + 2);
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 4000]);
    expect(said[0]).toMatch(/^The proxy worker exited unexpectedly \(SIGKILL\); restarting in 500 ms \(restart 1\)/);
    expect(spawned[1]!.env).toMatchObject({ BULKHEAD_WORKER_RESTARTS: "1", BULKHEAD_WORKER_LAST_EXIT: "SIGKILL" });
    expect(spawned[5]!.env).toMatchObject({ BULKHEAD_WORKER_RESTARTS: "5", BULKHEAD_WORKER_LAST_EXIT: "code 1" });
    expect(Number.isNaN(Date.parse(spawned[5]!.env.BULKHEAD_WORKER_LAST_EXIT_AT!))).toBe(false);
    expect(gaveUp).toEqual([]);
    await supervisor.stop();
  });

  it("starts the backoff over once a worker stayed up", () => {
    start();
    spawned[0]!.ready();
    spawned[0]!.crash({ code: 1 });
    vi.advanceTimersByTime(500);
    spawned[1]!.crash({ code: 1 });
    expect(said.at(-1)).toMatch(/restarting in 1000 ms/);
    vi.advanceTimersByTime(1000);
    vi.advanceTimersByTime(backoff.stableAfterMs);
    spawned[2]!.crash({ code: 1 });
    expect(said.at(-1)).toMatch(/restarting in 500 ms/);
  });

  it("gives up (stops the stack) when the first worker never became ready: a start-up failure is not a crash", () => {
    start();
    spawned[0]!.crash({ code: 1 });
    expect(gaveUp).toEqual(["code 1"]);
    vi.advanceTimersByTime(60_000);
    expect(spawned).toHaveLength(1);
  });

  it("restarts nothing once stopped", async () => {
    const supervisor = start();
    spawned[0]!.ready();
    const stopping = supervisor.stop();
    await vi.runAllTimersAsync();
    await stopping;
    vi.advanceTimersByTime(60_000);
    expect(spawned).toHaveLength(1);
    expect(said).toEqual([]);
  });
});
