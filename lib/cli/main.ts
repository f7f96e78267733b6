import process from "node:process";
import { ZodError } from "zod";
import { ConfigError } from "@/lib/config/env";
import { isAppError } from "@/lib/errors/app-error";
import { agentCommand } from "./agent";
import { auditCommand } from "./audit";
import { CliError, type CliContext, type CommandHandler } from "./context";
import { caCommand } from "./ca";
import { credentialCommand } from "./credential";
import { dbCommand } from "./db";
import { keysCommand } from "./keys";
import { startCommand } from "./start";
import { taskCommand } from "./task";
import { tokenCommand } from "./token";
import { userCommand } from "./user";
import { workerCommand } from "./worker";

const USAGE = `Usage: bulkhead <command> [options]

Commands:
  start                               set up and run Bulkhead (database, migrations, dashboard, proxy worker)
  db migrate                          apply pending database migrations
  user create --email E --role R      create a dashboard user (password from stdin, or generated)
  agent create --name N [--owner EMAIL] [--description D]
  agent list [--query Q]
  agent suspend ID | agent reactivate ID
  task create --agent ID --purpose TEXT [--policy FILE] [--ttl 15m]
  task list [--agent ID] | task end ID
  token mint --task ID                print a task token (the agent's only credential)
  token verify TOKEN                  print the verified claims, or fail with the reason
  token revoke JTI
  keys rotate                         new signing key now; old keys verify until their tokens expire
  credential add --name N --host H [--scheme https] [--port P] --header 'Authorization: Bearer {secret}'
                                      store an upstream credential (secret read from stdin)
  credential list | credential rotate ID (secret on stdin) | credential delete ID
  ca cert                             print the interception CA certificate (PEM) for agent trust stores
  ca rotate                           replace the interception CA
  audit verify                        check the audit hash chain and signed checkpoints
  audit checkpoint                    sign the current end of the audit chain
  policy check FILE                   validate a task policy
  policy explain --policy FILE --request 'METHOD URL' [--body FILE]
  sandbox run --task ID [--verify] -- COMMAND [ARGS...]
                                      run a command in a network sandbox whose only way out is Bulkhead (root)
  sandbox list [--all] | sandbox stop ID | sandbox verify [--task ID] | sandbox cleanup
  worker                              run the proxy worker alone (npm start runs it for you)

Every command accepts --json for machine-readable output.`;

const COMMANDS: Record<string, () => Promise<CommandHandler> | CommandHandler> = {
  start: () => startCommand,
  db: () => dbCommand,
  user: () => userCommand,
  agent: () => agentCommand,
  task: () => taskCommand,
  token: () => tokenCommand,
  keys: () => keysCommand,
  credential: () => credentialCommand,
  ca: () => caCommand,
  audit: () => auditCommand,
  policy: async () => (await import("./policy")).policyCommand,
  sandbox: async () => (await import("./sandbox")).sandboxCommand,
  worker: () => workerCommand,
};

export function defaultContext(json: boolean): CliContext {
  return {
    json,
    stdout: (line) => process.stdout.write(`${line}\n`),
    stderr: (line) => process.stderr.write(`${line}\n`),
    stdinIsTTY: Boolean(process.stdin.isTTY),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    },
  };
}

/** Runs the CLI; returns the exit code. Errors become one line on stderr. */
export async function main(argv: string[], ctx: CliContext = defaultContext(argv.includes("--json"))): Promise<number> {
  const args = argv.filter((a) => a !== "--json");
  const [name, ...rest] = args;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    (name ? ctx.stdout : ctx.stderr)(USAGE);
    return name ? 0 : 2;
  }
  const factory = COMMANDS[name];
  if (!factory) {
    ctx.stderr(`bulkhead: unknown command "${name}". Run \`bulkhead --help\`.`);
    return 2;
  }
  try {
    const handler = await factory();
    return (await handler(rest, ctx)) ?? 0;
  } catch (error) {
    ctx.stderr(`bulkhead ${name}: ${describeError(error)}`);
    return error instanceof CliError ? error.exitCode : 1;
  }
}

function describeError(error: unknown): string {
  if (error instanceof ZodError) return error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ");
  if (isAppError(error)) return error.userMessage;
  if (error instanceof ConfigError) return error.message;
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.message;
  return String(error);
}
