import { execFile } from "node:child_process";
import path from "node:path";

export interface CompiledCliRun {
  code: number;
  stdout: string;
  stderr: string;
}

const BIN = path.resolve("bin/bulkhead.mjs");

/**
 * Runs `bulkhead` as people do: the compiled CLI (bin/bulkhead.mjs, dist/cli) in a child process
 * with exactly `env` (nothing of the test's own environment), `stdin` written and closed.
 * Unlike tests/support/cli.ts (the entry point in-process), this reaches what only the shipped
 * build does: its files' locations, its exit status, what it prints on its own.
 */
export function runCompiledCli(
  args: readonly string[],
  options: { env: Record<string, string | undefined>; cwd?: string; stdin?: string; timeoutMs?: number },
): Promise<CompiledCliRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: options.cwd, env: options.env as NodeJS.ProcessEnv, timeout: options.timeoutMs ?? 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(options.stdin ?? "");
  });
}
