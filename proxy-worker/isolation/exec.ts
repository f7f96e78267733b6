/**
 * Runs the system tools isolation needs (`ip`, `nft`, `setpriv`) with argument vectors, never a
 * shell, and turns their failures into one-line errors. A missing tool or capability is named.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

export class IsolationError extends Error {
  constructor(
    message: string,
    /** Stable code: `not_privileged`, `tool_missing`, `command_failed`, `pool_exhausted`, ... */
    readonly code: string,
  ) {
    super(message);
    this.name = "IsolationError";
  }
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Something that runs a system tool: `run` (a fork each time) or a ToolHost (tool-host.ts). */
export interface ToolRunner {
  run(file: string, args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
}

/** System tools get a fixed PATH and locale, nothing else from our environment (no secrets). */
export const TOOL_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" } as unknown as NodeJS.ProcessEnv;

/** The error for a tool that could not be started (`code`: the spawn error's, ENOENT = not installed). */
export function spawnFailure(file: string, code: string | undefined, message: string): IsolationError {
  return code === "ENOENT"
    ? new IsolationError(`${file} is not installed (Debian: apt-get install ${file === "nft" ? "nftables" : file === "ip" ? "iproute2" : "util-linux"})`, "tool_missing")
    : new IsolationError(`${file} could not run: ${message}`, "command_failed");
}

/** The error for a tool that ran and failed: its own first line of stderr, else how it ended. */
export function toolFailure(file: string, args: readonly string[], stderr: string, ended: { code: number | null; signal?: string | null; why?: string }): IsolationError {
  const first = ended.why ?? stderr.split("\n").find((l) => l.trim() !== "") ?? (ended.signal ? `killed (${ended.signal})` : `exit ${String(ended.code)}`);
  return new IsolationError(`${file} ${args.slice(0, 4).join(" ")}: ${first.trim()}`, /Operation not permitted/i.test(stderr) ? "not_privileged" : "command_failed");
}

/** Runs `file args...`; rejects with an IsolationError carrying the tool's own first line of stderr. */
export function run(file: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: TOOL_ENV });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 15_000);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(spawnFailure(file, error.code, error.message));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(toolFailure(file, args, stderr, { code, signal }));
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

const CAP_NET_ADMIN = 12;

/** True when this process holds CAP_NET_ADMIN (root normally does). */
export function hasNetAdmin(status = (() => readFileSync("/proc/self/status", "utf8"))): boolean {
  try {
    const line = status()
      .split("\n")
      .find((l) => l.startsWith("CapEff:"));
    if (!line) return false;
    return (BigInt(`0x${line.split(/\s+/)[1] ?? "0"}`) & (1n << BigInt(CAP_NET_ADMIN))) !== 0n;
  } catch {
    return false;
  }
}

export function requireNetAdmin(what: string): void {
  if (process.platform !== "linux") throw new IsolationError(`${what} needs Linux network namespaces`, "unsupported");
  if (!hasNetAdmin()) throw new IsolationError(`${what} needs CAP_NET_ADMIN: run it as root (sudo) or grant the capability`, "not_privileged");
}
