import { ZodError } from "zod";
import { ConfigError } from "@/lib/config/env";
import { OwnerRequiredError } from "@/lib/agents/owner-required";
import { AppError, isAppError } from "@/lib/errors/app-error";
import { CliError } from "./context";
import { DataFolderBusyError } from "./runtime/data-folder-lock";

/** The --json form of an error: a stable code, the same message as the text form, and details where they exist. */
export function describeErrorJson(error: unknown): { code: string; message: string; issues?: Array<{ path: string; message: string }>; problems?: string[] } {
  if (error instanceof ZodError) {
    return { code: "invalid_input", message: describeError(error), issues: error.issues.map((i) => ({ path: i.path.join(".") || "input", message: i.message })) };
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

/** The field-level reasons an AppError carries (`details.fieldErrors`, as the API returns them). */
function fieldIssues(error: AppError): Array<{ path: string; message: string }> {
  const fields = (error.details as { fieldErrors?: unknown } | null | undefined)?.fieldErrors;
  if (typeof fields !== "object" || fields === null) return [];
  return Object.entries(fields).flatMap(([path, messages]) =>
    (Array.isArray(messages) ? messages : [messages]).filter((m): m is string => typeof m === "string" && m.length > 0).map((message) => ({ path, message: message.replace(/\s*\n\s*/g, " ") })),
  );
}

export function describeError(error: unknown): string {
  if (error instanceof ZodError) return error.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ");
  if (isAppError(error)) {
    // What is wrong with each field (a policy's errors by line, a TTL over the limit), unless the
    // message already says it: "The policy is not valid." alone tells an operator nothing to fix.
    const said = fieldIssues(error).filter((i) => !error.userMessage.includes(i.message));
    return said.length > 0 ? `${error.userMessage} ${said.map((i) => `${i.path}: ${i.message}`).join("; ")}` : error.userMessage;
  }
  if (error instanceof ConfigError) return error.message;
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
  return new AppError("INVALID_INPUT", note ? `${message} ${note}` : message, { details: error.details });
}
