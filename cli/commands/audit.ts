import { checkpointCommand, keyCommand, verifyCommand } from "./audit-checkpoint";
import { exportCommand } from "./audit-export";
import { reportCommand, verifyReportCommand } from "./audit-report";
import { retentionCommand, verifyArchiveCommand } from "./audit-retention";
import { CliError, type CommandHandler } from "../context";
import { usageLine } from "../help";

const USAGE = usageLine("audit");

export const auditCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  if (sub === "verify") return verifyCommand(rest, ctx);
  if (sub === "export") return exportCommand(rest, ctx);
  if (sub === "checkpoint") return checkpointCommand(rest, ctx);
  if (sub === "key") return keyCommand(rest, ctx);
  if (sub === "report") return reportCommand(rest, ctx);
  if (sub === "verify-report") return verifyReportCommand(rest, ctx);
  if (sub === "retention") return retentionCommand(rest, ctx);
  if (sub === "verify-archive") return verifyArchiveCommand(rest, ctx);
  throw new CliError(USAGE, 2);
};
