import { CliError, type CliContext, type CommandHandler } from "../context";
import { usageLine } from "../help";

const USAGE = usageLine("audit");

type Subcommand = (args: string[], ctx: CliContext) => Promise<number>;

// Each subcommand's module is imported when it runs, as the command table does for commands: a
// report renders PDFs (pdfkit and its fonts), retention writes archives; `audit verify` needs
// neither and should not pay for loading them.
const SUBCOMMANDS: Record<string, () => Promise<Subcommand>> = {
  verify: async () => (await import("./audit-checkpoint")).verifyCommand,
  checkpoint: async () => (await import("./audit-checkpoint")).checkpointCommand,
  key: async () => (await import("./audit-checkpoint")).keyCommand,
  export: async () => (await import("./audit-export")).exportCommand,
  report: async () => (await import("./audit-report")).reportCommand,
  "verify-report": async () => (await import("./audit-report")).verifyReportCommand,
  retention: async () => (await import("./audit-retention")).retentionCommand,
  "verify-archive": async () => (await import("./audit-retention")).verifyArchiveCommand,
};

export const auditCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  const load = sub !== undefined && Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!load) throw new CliError(USAGE, 2);
  return (await load())(rest, ctx);
};
