import { main } from "@/lib/cli/main";
import type { CliContext } from "@/lib/cli/context";

export interface CliRun {
  code: number;
  stdout: string[];
  stderr: string[];
}

/** Runs the real CLI entry point in-process against `databaseUrl`, capturing its output. */
export async function runCli(argv: string[], options: { databaseUrl: string; stdin?: string }): Promise<CliRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const ctx: CliContext = {
    json: argv.includes("--json"),
    stdout: (l) => stdout.push(l),
    stderr: (l) => stderr.push(l),
    stdinIsTTY: options.stdin === undefined,
    readStdin: async () => options.stdin ?? "",
  };
  const previous = process.env.DATABASE_URL;
  process.env.DATABASE_URL = options.databaseUrl;
  try {
    return { code: await main(argv, ctx), stdout, stderr };
  } finally {
    if (previous === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = previous;
  }
}
