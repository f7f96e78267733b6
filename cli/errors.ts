import { ZodError } from "zod";
import { ConfigError } from "@/lib/config/env";
import { OwnerRequiredError } from "@/lib/agents/owner-required";
import { AppError, isAppError } from "@/lib/errors/app-error";
import { databaseMessage } from "@/lib/db/errors";
import { apiIssues } from "@/lib/http/form-errors";
import { CliError } from "./context";
import { DataFolderBusyError } from "./runtime/data-folder-lock";

/** The --json form of an error: a stable code, the same message as the text form, and details where they exist. */
export function describeErrorJson(error: unknown): { code: string; message: string; issues?: Array<{ path: string; message: string }>; problems?: string[] } {
  if (error instanceof ZodError) {
    return { code: "invalid_input", message: describeError(error), issues: apiIssues(error).map((i) => ({ path: i.path || "input", message: i.message })) };
  }
  if (isAppError(error)) {
    const issues = fieldIssues(error);
    return { code: error.code.toLowerCase(), message: describeError(error), ...(issues.length > 0 ? { issues } : {}) };
  }
  if (error instanceof ConfigError) return { code: "config", message: "Bulkhead configuration is invalid.", problems: error.problems };
  if (error instanceof CliError) return { code: error.exitCode === 2 ? "usage" : "failed", message: error.message };
  if (error instanceof DataFolderBusyError) return { code: "data_folder_busy", message: error.message };
  return { code: "error", message: describeError(error) };
}

/**
 * The flag a command takes for each field of the domain's input schemas: a refusal names what
 * the person typed (`--agent: Not a valid id.`), not the schema's field (`agentId: ...`).
 */
const FLAG_OF_FIELD: Record<string, string> = {
  agentId: "--agent",
  format: "--format",
  taskId: "--task",
  purpose: "--purpose",
  scope: "--scope",
  policyYaml: "--policy",
  ttl: "--ttl",
  ownerEmail: "--owner",
  description: "--description",
  headerTemplate: "--header",
  serviceId: "--service",
  environments: "--env",
  scheme: "--scheme",
  host: "--host",
  port: "--port",
  email: "--email",
  role: "--role",
  name: "--name",
  // audit export's filters
  from: "--from",
  to: "--to",
  user: "--user",
  type: "--type",
  outcome: "--outcome",
  effect: "--effect",
  service: "--service",
  environment: "--environment",
  q: "--q",
  password: "the password on standard input",
};

function fieldName(path: readonly PropertyKey[]): string {
  const [first, ...rest] = path.map(String);
  if (first === undefined) return "input";
  const flag = FLAG_OF_FIELD[first];
  // One value of a comma-separated flag (`--effect read,bogus`): counted as the person counts,
  // not the schema's zero-based path (`--effect.1`).
  if (flag && rest.length === 1 && /^\d+$/.test(rest[0]!)) return `${flag} (value ${Number(rest[0]) + 1})`;
  return [flag ?? first, ...rest].join(".");
}

/**
 * One refused field as a command says it: named by its flag, and a message that already starts
 * with the field's name ("from must be a date ...") says it once (`--from must be a date ...`),
 * not "from: from must be".
 */
function issueLine(issue: { path: string; message: string }): string {
  const path = issue.path === "" ? [] : issue.path.split(".");
  const name = fieldName(path);
  if (path.length === 1 && issue.message.startsWith(`${path[0]} `)) return `${name} ${issue.message.slice(path[0]!.length + 1)}`;
  return `${name}: ${issue.message}`;
}

export function describeError(error: unknown): string {
  if (error instanceof ZodError) return apiIssues(error).map(issueLine).join("; ");
  if (isAppError(error)) {
    // The dashboard shows these beside the field; a command has only its one line to say them.
    // Only what the message does not say already ("The agent is suspended." beside "The agent is suspended; reactivate it first.").
    const said = (m: string) => error.userMessage.toLowerCase().includes(m.toLowerCase().replace(/\.$/, ""));
    const more: string[] = [];
    for (const { message } of fieldIssues(error)) if (!said(message) && !more.includes(message)) more.push(message);
    return more.length === 0 ? error.userMessage : `${error.userMessage.replace(/\.$/, "")}: ${more.join("; ")}`;
  }
  if (error instanceof ConfigError) return error.message;
  // A failed query: what the database said, not Prisma's "Invalid `…` invocation in" heading.
  const fromDatabase = databaseMessage(error);
  if (fromDatabase) return fromDatabase;
  // The first line that says something (a driver's message may start with an empty line).
  if (error instanceof Error) return error.message.split("\n").find((line) => line.trim() !== "")?.trim() ?? error.name;
  return String(error);
}

/**
 * An agent the CLI registers with no owner named, where it cannot pick one (no active admin, or
 * several): the same refusal, phrased with the flag that names the owner, and `note` (a sentence
 * about the command) after it.
 */
export function ownerFlagError(error: unknown, note?: string): unknown {
  if (!(error instanceof OwnerRequiredError)) return error;
  const message =
    error.reason === "no_admin"
      ? "No active admin exists yet to own the agent. Create the first admin (the one-time link `bulkhead start` prints, or `bulkhead user create --email EMAIL --role admin`), or pass --owner EMAIL naming an active user."
      : "Several admins could own the agent: pass --owner EMAIL naming its owner.";
  // Not the refusal's field details: they say the same in the dashboard's words (name the owner in the form).
  return new AppError("INVALID_INPUT", note ? `${message} ${note}` : message);
}

/**
 * What a domain error says about each field (`details.fieldErrors`, as the dashboard's forms show
 * them): "The policy is not valid." alone does not say which line of the file is wrong. Each
 * message is put on one line, since a command reports an error in one line.
 */
function fieldIssues(error: AppError): Array<{ path: string; message: string }> {
  const fieldErrors = (error.details as { fieldErrors?: unknown } | undefined)?.fieldErrors;
  if (!fieldErrors || typeof fieldErrors !== "object") return [];
  const issues: Array<{ path: string; message: string }> = [];
  for (const [path, messages] of Object.entries(fieldErrors as Record<string, unknown>)) {
    for (const message of Array.isArray(messages) ? messages : [messages]) {
      if (typeof message === "string" && message.trim()) issues.push({ path, message: message.replace(/\s*\n\s*/g, " ").trim() });
    }
  }
  return issues;
}
