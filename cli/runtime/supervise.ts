import type { ChildProcess } from "node:child_process";

export interface SuperviseOptions {
  /** Starts the worker with these extra environment variables (what the launcher says about earlier runs). */
  spawn(env: Record<string, string>): ChildProcess;
  /** One line for the launcher's log. */
  say(line: string): void;
  /** The worker died before it was ever ready (a start-up failure, not a crash): restarting would only loop. */
  onGiveUp(reason: string): void;
  backoff?: { initialMs: number; maxMs: number; stableAfterMs: number };
  /** What the child is, in the launcher's log. Default: "proxy worker". */
  name?: string;
  /** What goes on while it is away, said with each restart. */
  meanwhile?: string;
  /**
   * How long `stop` waits after SIGTERM before SIGKILL. It must exceed what the child's own
   * shutdown may take: the worker's is bounded at 10 s for requests in flight plus 5 s to ship
   * its audit log, so it gets 20 s. Default: 10 s.
   */
  stopTimeoutMs?: number;
}

export interface WorkerSupervisor {
  /** The running worker, or null between a crash and its restart. */
  child(): ChildProcess | null;
  /** Resolves once a worker has said it is ready (IPC `{ type: "ready" }`). */
  ready(): Promise<void>;
  /** Stops the worker (SIGTERM, then SIGKILL after `stopTimeoutMs`) and restarts nothing. */
  stop(): Promise<void>;
}

const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000, stableAfterMs: 60_000 };

/** The launcher's wait for the proxy worker to stop: its own bounds (10 s in flight, 5 s audit) and a margin. */
export const WORKER_STOP_TIMEOUT_MS = 20_000;

/**
 * Keeps the proxy worker running under `bulkhead start`. A worker that crashes after it was
 * ready is restarted with exponential backoff (reset once a run stays up long enough), instead
 * of the launcher stopping the whole stack, dashboard included. Each restart is said in the
 * launcher's log and passed to the new worker (BULKHEAD_WORKER_RESTARTS, _LAST_EXIT,
 * _LAST_EXIT_AT), which reports it in /readyz and its metrics. While no worker runs, agents get
 * connection errors: Bulkhead fails closed, it never lets traffic around itself.
 *
 * The dashboard runs under the same supervisor (`name: "dashboard"`; it ignores the restart
 * variables): a dashboard killed (the kernel's out-of-memory killer picks the largest process)
 * comes back while the worker goes on enforcing, instead of taking the proxy down with it.
 */
export function superviseWorker(options: SuperviseOptions): WorkerSupervisor {
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const name = options.name ?? "proxy worker";
  const meanwhile = options.meanwhile ?? "The dashboard keeps running; agents cannot connect until the worker is back.";
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  let current: ChildProcess | null = null;
  let stopping = false;
  let everReady = false;
  let restarts = 0;
  let consecutive = 0;
  let startedAt = 0;
  let last: { exit: string; at: string } | null = null;
  let timer: NodeJS.Timeout | null = null;
  let onReady: Array<() => void> = [];

  const start = () => {
    timer = null;
    const env: Record<string, string> = last ? { BULKHEAD_WORKER_RESTARTS: String(restarts), BULKHEAD_WORKER_LAST_EXIT: last.exit, BULKHEAD_WORKER_LAST_EXIT_AT: last.at } : {};
    const child = options.spawn(env);
    current = child;
    startedAt = Date.now();
    child.on("message", (m: { type?: string } | null) => {
      if (m?.type !== "ready") return;
      everReady = true;
      const waiting = onReady;
      onReady = [];
      for (const resolve of waiting) resolve();
    });
    child.on("error", (error) => options.say(`The ${name} could not be started: ${error.message}`));
    child.on("exit", (code, signal) => exited(child, signal ?? `code ${code}`));
  };

  const exited = (child: ChildProcess, how: string) => {
    if (current !== child) return;
    current = null;
    if (stopping) return;
    if (!everReady) {
      options.say(`The ${name} exited during start-up (${how}); stopping everything.`);
      options.onGiveUp(how);
      return;
    }
    if (Date.now() - startedAt >= backoff.stableAfterMs) consecutive = 0;
    consecutive++;
    restarts++;
    const delay = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (consecutive - 1));
    last = { exit: how, at: new Date().toISOString() };
    options.say(`The ${name} exited unexpectedly (${how}); restarting in ${delay} ms (restart ${restarts}). ${meanwhile}`);
    timer = setTimeout(start, delay);
  };

  start();
  return {
    child: () => current,
    ready: () => (everReady ? Promise.resolve() : new Promise<void>((resolve) => onReady.push(resolve))),
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      const child = current;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const kill = setTimeout(() => {
        options.say(`The ${name} did not stop within ${stopTimeoutMs / 1000} s of SIGTERM; killing it.`);
        child.kill("SIGKILL");
      }, stopTimeoutMs);
      await gone;
      clearTimeout(kill);
    },
  };
}
