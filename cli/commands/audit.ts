import { checkpointCommand, keyCommand, verifyCommand } from "./audit-checkpoint";
import { exportCommand } from "./audit-export";
import { reportCommand, verifyReportCommand } from "./audit-report";
import { retentionCommand, verifyArchiveCommand } from "./audit-retention";
import { CliError, type CommandHandler } from "../context";

const USAGE = `usage:
  bulkhead audit verify [--from SEQ] [--key KEY_ID:PUBLIC_KEY]... [--trusted FILE] [--no-outside]
  bulkhead audit export [--format csv|jsonl|ocsf] [--output FILE] [--from TIME] [--to TIME] [--agent ID|NAME]
                        [--task ID] [--user ID|EMAIL] [--type T]... [--outcome O]... [--effect E]...
                        [--service S]... [--environment E]... [--q TEXT]
  bulkhead audit checkpoint [--no-sign]
  bulkhead audit key
  bulkhead audit report TASK_ID [--output FILE.pdf]
  bulkhead audit verify-report FILE.pdf [--signature FILE.sig] [--key KEY_ID:PUBLIC_KEY]... [--keys KEYS.json]
  bulkhead audit retention [--dry-run]
  bulkhead audit verify-archive FILE [--manifest FILE] [--key KEY_ID:PUBLIC_KEY]... [--keys KEYS.json]`;

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
