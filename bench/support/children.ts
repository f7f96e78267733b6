/**
 * Every process and temporary folder a bench run creates is registered here, so that a normal
 * end, an error, SIGINT or SIGTERM all stop them. Processes are pinned with `taskset` when it is
 * available; their output goes to a log file in the run's folder (its tail is printed on failure).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { compileBenchEntry } from "./compile";
import { IpcClient } from "./ipc";

const processes = new Map<ChildProcess, string>();
const folders = new Set<string>();
let runDir: string | null = null;

export const hasTaskset = spawnSync("taskset", ["-V"]).status === 0;

/** The run's temporary folder (logs, configs, certificates); removed at the end. */
export function runFolder(): string {
  runDir ??= tempFolder("bulkhead-bench-");
  return runDir;
}

export function tempFolder(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  folders.add(dir);
  return dir;
}

/** Which binary exists on PATH (for optional peers such as nginx and mitmdump). */
export function which(binary: string): string | null {
  const r = spawnSync("sh", ["-c", `command -v ${binary}`], { encoding: "utf8" });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

export interface Spawned {
  name: string;
  proc: ChildProcess;
  pid: number;
  log: string;
  logTail(lines?: number): string;
}

/** Starts `command` pinned to `cpus` (e.g. "1"), logging to <run folder>/<name>.log. */
export function start(name: string, command: string, args: string[], options: { cpus?: string; env?: Record<string, string | undefined>; ipc?: boolean; cwd?: string } = {}): Spawned {
  const log = path.join(runFolder(), `${name}.log`);
  const fd = openSync(log, "a");
  const argv = options.cpus && hasTaskset ? ["taskset", "-c", options.cpus, command, ...args] : [command, ...args];
  const proc = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ["ignore", fd, fd, ...(options.ipc ? (["ipc"] as const) : [])],
  });
  closeSync(fd);
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  processes.set(proc, name);
  proc.on("exit", () => processes.delete(proc));
  const logTail = (lines = 30) => {
    try {
      return readFileSync(log, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  };
  return { name, proc, pid: proc.pid, log, logTail };
}

/**
 * Runs a benchmark child to its end and reads the JSON it writes (`file`, under bench/results/)
 * during this run: the result when the file is fresh, and why not or why the exit was not clean.
 * A child that overstays `timeoutMs` gets SIGTERM (each stops its own PostgreSQL or namespaces on
 * it), then SIGKILL if that hangs.
 */
export async function runJsonChild<T>(
  root: string,
  name: string,
  argv: string[],
  file: string,
  o: { timeoutMs: number; cpus?: string; env?: Record<string, string> },
): Promise<{ result: T | null; error: string | null }> {
  const since = Date.now();
  const s = start(name, argv[0]!, argv.slice(1), { cpus: o.cpus, cwd: root, env: o.env });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      s.proc.kill("SIGTERM");
      setTimeout(() => s.proc.kill("SIGKILL"), 15_000).unref();
    }, o.timeoutMs);
    s.proc.once("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  const out = path.join(root, "bench", "results", file);
  const tail = () => s.logTail(8).replace(/\s+/g, " ").trim();
  try {
    if (statSync(out).mtimeMs < since) throw new Error(`no fresh bench/results/${file}`);
    const result = JSON.parse(readFileSync(out, "utf8")) as T;
    return { result, error: code === 0 ? null : `${name} exited ${code}; ${tail()}` };
  } catch (error) {
    return { result: null, error: `${name} exited ${code}: ${(error as Error).message}; ${tail()}` };
  }
}

export interface NodeChild<T> extends Spawned {
  ipc: IpcClient;
  info: T;
}

/**
 * Starts a TypeScript entry point with an IPC channel and waits for its `ready` message: under
 * tsx, or (`compiled`) bundled first and run as plain JavaScript, as production runs the worker.
 */
export async function startNode<T>(
  name: string,
  script: string,
  options: { cpus?: string; env?: Record<string, string | undefined>; args?: string[]; nodeArgs?: string[]; readyTimeoutMs?: number; compiled?: boolean } = {},
): Promise<NodeChild<T>> {
  const entry = options.compiled ? [await compileBenchEntry(script)] : ["--import", "tsx", script];
  const s = start(name, process.execPath, [...(options.nodeArgs ?? []), ...entry, ...(options.args ?? [])], { cpus: options.cpus, env: options.env, ipc: true });
  const info = await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not become ready in time:\n${s.logTail()}`)), options.readyTimeoutMs ?? 120_000);
    s.proc.on("message", (m: { ready?: boolean }) => {
      if (m?.ready) {
        clearTimeout(timer);
        resolve(m as T);
      }
    });
    s.proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (${code ?? signal}):\n${s.logTail()}`));
    });
  });
  return { ...s, ipc: new IpcClient(name, s.proc), info };
}

/** Stops one process: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(proc: ChildProcess, graceMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

const cleanups = new Set<() => Promise<void>>();

/**
 * Something this process started itself that must be stopped before the run's folders go (an
 * embedded PostgreSQL it runs in-process): run by cleanupAll, on any end of the run or a signal.
 * Returns a function that forgets it (once the caller has stopped it itself).
 */
export function onCleanup(fn: () => Promise<void>): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** Stops what onCleanup registered, every registered process (newest first), and removes every temporary folder. */
export async function cleanupAll(): Promise<void> {
  for (const fn of [...cleanups].reverse()) await fn().catch((error: unknown) => console.error(`cleanup: ${error instanceof Error ? error.message : String(error)}`));
  cleanups.clear();
  const list = [...processes.keys()].reverse();
  for (const proc of list) await stop(proc);
  removeFolders();
}

function removeFolders(): void {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  folders.clear();
}

let installed = false;
let signalled = false;

/** True once SIGINT/SIGTERM arrived: the run is being torn down, errors from here on are expected. */
export const interrupted = () => signalled;

/** Cleans up on SIGINT/SIGTERM (then exits 130/143) and, synchronously, on any exit. */
export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals, code: number) => {
    if (signalled) return;
    signalled = true;
    console.error(`\n${signal}: stopping every bench process and removing temporary folders...`);
    void cleanupAll().finally(() => process.exit(code));
  };
  process.on("SIGINT", () => onSignal("SIGINT", 130));
  process.on("SIGTERM", () => onSignal("SIGTERM", 143));
  process.on("exit", () => {
    // Last resort: children with IPC also stop themselves when the channel closes.
    for (const proc of processes.keys()) proc.kill("SIGTERM");
    removeFolders();
  });
}

/** Pins the calling process (all its threads) to `cpus`. */
export function pinSelf(cpus: string): boolean {
  if (!hasTaskset) return false;
  return spawnSync("taskset", ["-a", "-pc", cpus, String(process.pid)]).status === 0;
}

/**
 * Runs a bench entry point: an error is printed and the exit code is 1, unless a signal is tearing
 * the run down (its handler cleans up and exits); then every process it started is stopped and
 * every temporary folder removed, and the process exits.
 */
export function runMain(main: () => Promise<unknown>, o: { stack?: boolean } = {}): void {
  main()
    .catch((error: unknown) => {
      if (interrupted()) return; // children died with the signal; the handler cleans up and exits
      console.error(error instanceof Error ? (o.stack === false ? error.message : (error.stack ?? error.message)) : error);
      process.exitCode = 1;
    })
    .finally(async () => {
      if (interrupted()) return;
      await cleanupAll();
      process.exit();
    });
}
