/** What every CLI command receives: parsed flags, output sinks and stdin. */
export interface CliContext {
  /** `--json` was given: print machine-readable output only. */
  json: boolean;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Standard output as a stream, for output that is not lines (exports); default process.stdout. */
  stdoutStream?: NodeJS.WritableStream;
  /** Reads all of standard input (used for secrets and passwords). */
  readStdin: () => Promise<string>;
  /** Whether standard input is a terminal (then secrets are generated, not read). */
  stdinIsTTY: boolean;
  /**
   * Lines go to the process's own standard output, so a command whose output could not be
   * written fails (cli/main.ts); a test's context, which collects lines, leaves it unset.
   */
  checksOutput?: boolean;
}

/** A command's failure: printed as one line on stderr, exit code non-zero. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** A command receives the arguments after its own name (e.g. after `policy check`). */
export type CommandHandler = (args: string[], ctx: CliContext) => Promise<number | void>;
