import { AppError } from "@/lib/errors/app-error";

/**
 * An agent created without a named owner by an actor that is not a person (the CLI, a system
 * task) is owned by the only active admin; with none or several, its owner must be named.
 * `reason` lets a caller say how to name one (the CLI's --owner flag).
 */
export class OwnerRequiredError extends AppError {
  constructor(readonly reason: "no_admin" | "several_admins") {
    const message =
      reason === "no_admin"
        ? "No active admin exists yet to own the agent: name its owner (an active user's email), or create the first admin."
        : "Several admins could own the agent: name its owner (an active user's email).";
    super("INVALID_INPUT", message, { details: { fieldErrors: { ownerEmail: [message] } } });
  }
}
