import { main } from "@/cli/main";
import type { CliContext } from "@/cli/context";
import { databaseEnv, type TestDatabase } from "./database";

export interface CliRun {
  code: number;
  stdout: string[];
  stderr: string[];
}

/**
 * Runs the real CLI entry point in-process against the test database, with the configuration an
 * operator gives it for an external database (owner URL for migrations, the dashboard's role for
 * everything else), capturing its output.
 */
export async function runCli(argv: string[], options: { database: Pick<TestDatabase, "url" | "workerUrl" | "ownerUrl">; stdin?: string }): Promise<CliRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const ctx: CliContext = {
    json: argv.includes("--json"),
    stdout: (l) => stdout.push(l),
    stderr: (l) => stderr.push(l),
    stdinIsTTY: options.stdin === undefined,
    readStdin: async () => options.stdin ?? "",
  };
  const env = databaseEnv(options.database);
  const previous = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return { code: await main(argv, ctx), stdout, stderr };
  } finally {
    for (const [k, v] of Object.entries(previous)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
