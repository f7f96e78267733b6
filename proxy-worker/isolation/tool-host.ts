/**
 * Runs system tools for a long-lived process without forking it each time.
 *
 * `child_process.spawn` forks the calling process, and the fork copies its page tables while the
 * event loop waits: 3-8 ms for a worker of ~300 MiB on an idle 2-core machine, tens of
 * milliseconds under load. The worker reads the fence's drop counters (`nft`) every 2 s while a
 * sandbox is bound, so every read stalled every request in flight, and the sandbox path's p99 at
 * 1,000 requests/s was twice the explicit path's (docs/benchmarks.md). A ToolHost starts one small
 * helper process once (its own fork is cheap: it holds almost nothing) and asks it to run each
 * tool; the worker only writes a line to a pipe and reads the answer.
 *
 * The helper runs only the tools named when it starts (argument vectors, never a shell), with the
 * fixed tool environment (PATH and locale: none of the worker's keys), and exits when its stdin
 * closes, killing the tools still running, so it never outlives the worker, even a SIGKILLed one.
 * If it dies, or does not answer within a call's timeout and a grace period, the calls waiting on
 * it fail (a helper that does not answer is killed) and the next call starts a new one.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { IsolationError, spawnFailure, TOOL_ENV, toolFailure, type ExecResult, type ToolRunner } from "./exec";

/** Most a tool may print on either stream before it is killed (the fence's counters are small). */
const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;
/** How long past a call's own timeout the helper may take to answer before it is deemed stuck. */
export const HELPER_GRACE_MS = 2_000;

/**
 * The helper, run with `node -e`. Requests and answers are JSON lines:
 *   { id, file, args, input, timeoutMs } -> { id, code, signal, stdout, stderr, error }
 */
const HELPER = String.raw`
const { spawn } = require("node:child_process");
const allowed = new Set(JSON.parse(process.argv[1]));
const max = Number(process.argv[2]);
const answer = (a) => process.stdout.write(JSON.stringify(a) + "\n");
const running = new Set();
// The worker is gone (its end of the pipe closed): so are the tools it asked for.
const quit = () => {
  for (const child of running) child.kill("SIGKILL");
  process.exit(0);
};
const runOne = (q) => {
  if (!allowed.has(q.file)) return answer({ id: q.id, error: { code: "EACCES", message: q.file + " is not a tool this helper runs" } });
  let child;
  try {
    child = spawn(q.file, q.args, { stdio: ["pipe", "pipe", "pipe"], env: process.env });
  } catch (e) {
    return answer({ id: q.id, error: { code: e.code || "ERR", message: e.message } });
  }
  running.add(child);
  const out = [], err = [];
  let bytes = 0, failed = null, done = false;
  const timer = setTimeout(() => child.kill("SIGKILL"), q.timeoutMs);
  const take = (into) => (d) => {
    bytes += d.length;
    if (bytes > max) { failed = failed || { code: "E2BIG", message: "printed more than " + max + " bytes" }; child.kill("SIGKILL"); return; }
    into.push(d);
  };
  child.stdout.on("data", take(out));
  child.stderr.on("data", take(err));
  child.on("error", (e) => { failed = failed || { code: e.code || "ERR", message: e.message }; });
  child.on("close", (code, signal) => {
    if (done) return;
    done = true;
    running.delete(child);
    clearTimeout(timer);
    answer({ id: q.id, code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), error: failed });
  });
  child.stdin.on("error", () => {});
  child.stdin.end(q.input || "");
};
let buf = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => {
  buf += c;
  for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line) runOne(JSON.parse(line));
  }
});
process.stdin.on("end", quit);
process.stdout.on("error", quit);
`;

interface Answer {
  id: number;
  code?: number | null;
  signal?: string | null;
  stdout?: string;
  stderr?: string;
  error?: { code: string; message: string } | null;
}

interface Waiting {
  file: string;
  args: readonly string[];
  resolve: (r: ExecResult) => void;
  reject: (e: Error) => void;
  deadline: NodeJS.Timeout;
}

export class ToolHost implements ToolRunner {
  private helper: ChildProcessWithoutNullStreams | null = null;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private closed = false;
  /** Helpers started so far (tests: a dead helper is replaced, a live one reused). */
  started = 0;

  constructor(private readonly tools: readonly string[]) {}

  /** The helper's pid, or null before the first call (and after it died). */
  get pid(): number | null {
    return this.helper?.pid ?? null;
  }

  run(file: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    if (this.closed) return Promise.reject(new IsolationError(`${file}: the tool helper is closed`, "command_failed"));
    if (!this.tools.includes(file)) return Promise.reject(new IsolationError(`${file} is not a tool this helper runs`, "command_failed"));
    const helper = this.helper ?? this.start();
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? 15_000;
    return new Promise<ExecResult>((resolve, reject) => {
      // The helper kills a tool at timeoutMs; a helper that has not answered well after that is
      // stuck: it is killed, which fails every call waiting on it, and the next call starts afresh.
      const deadline = setTimeout(() => {
        if (this.waiting.has(id) && this.helper === helper) this.lost(helper, `did not answer within ${timeoutMs + HELPER_GRACE_MS} ms`);
      }, timeoutMs + HELPER_GRACE_MS);
      deadline.unref();
      this.waiting.set(id, { file, args, resolve, reject, deadline });
      this.holdOpen();
      helper.stdin.write(`${JSON.stringify({ id, file, args, input: options.input ?? "", timeoutMs })}\n`);
    });
  }

  /** Starts the helper now, while the caller is small and nothing waits on its event loop. */
  prepare(): void {
    if (!this.closed && !this.helper) this.start();
  }

  /** Ends the helper (it exits when its stdin closes); calls still waiting fail. */
  close(): void {
    this.closed = true;
    this.helper?.stdin.end();
    this.fail(new IsolationError("the tool helper was closed", "command_failed"));
  }

  private start(): ChildProcessWithoutNullStreams {
    const helper = spawn(process.execPath, ["-e", HELPER, JSON.stringify(this.tools), String(MAX_OUTPUT_BYTES)], { stdio: ["pipe", "pipe", "pipe"], env: TOOL_ENV });
    this.helper = helper;
    this.started++;
    let buf = "";
    helper.stdout.setEncoding("utf8");
    helper.stdout.on("data", (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let answer: Answer;
        try {
          answer = JSON.parse(line) as Answer;
        } catch {
          this.lost(helper, "sent something that is not an answer"); // start afresh
          return;
        }
        this.settle(answer);
      }
    });
    let stderr = "";
    helper.stderr.on("data", (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    helper.stdin.on("error", () => undefined);
    const why = (what: string) => `${what}${stderr ? `: ${stderr.trim().split("\n")[0]}` : ""}`;
    helper.on("error", (error) => this.lost(helper, why(`could not run: ${error.message}`)));
    helper.on("exit", (code, signal) => this.lost(helper, why(`exited (${signal ?? `code ${String(code)}`})`)));
    // Idle, never what keeps the worker alive: it ends when the worker does (its stdin closes).
    // While a call waits, its answer does (holdOpen), as a child process of its own would.
    helper.unref();
    for (const stream of [helper.stdin, helper.stdout, helper.stderr] as unknown as Array<{ unref?: () => void }>) stream.unref?.();
    return helper;
  }

  /** The helper is unusable: kill it, fail every call waiting on it; the next call starts another. */
  private lost(helper: ChildProcessWithoutNullStreams, why: string): void {
    if (this.helper !== helper) return;
    this.helper = null;
    helper.kill("SIGKILL");
    this.fail(new IsolationError(`the tool helper ${why}`, "command_failed"));
  }

  private holdOpen(): void {
    const out = this.helper?.stdout as unknown as { ref?: () => void; unref?: () => void } | undefined;
    if (this.waiting.size > 0) out?.ref?.();
    else out?.unref?.();
  }

  private settle(a: Answer): void {
    const w = this.waiting.get(a.id);
    if (!w) return;
    this.waiting.delete(a.id);
    clearTimeout(w.deadline);
    this.holdOpen();
    // The same errors as exec.ts's `run`, whichever way the tool was started.
    if (a.error?.code === "ENOENT" || (a.error && a.code === undefined)) w.reject(spawnFailure(w.file, a.error.code, a.error.message));
    else if (a.code === 0 && !a.error) w.resolve({ stdout: a.stdout ?? "", stderr: a.stderr ?? "" });
    else w.reject(toolFailure(w.file, w.args, a.stderr ?? "", { code: a.code ?? null, signal: a.signal, why: a.error?.message }));
  }

  private fail(error: Error): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of all) {
      clearTimeout(w.deadline);
      w.reject(error);
    }
    this.holdOpen();
  }
}
