import { AppError } from "@/lib/errors/app-error";

/**
 * The event is not durable: it could be written neither to the database nor to the local spool,
 * or the writer is shutting down. The proxy must not forward the request it describes.
 */
export class AuditUnavailableError extends AppError {
  constructor(
    readonly reason: "closed" | "unwritable",
    message: string,
    cause?: unknown,
  ) {
    super("DATABASE_UNAVAILABLE", message, { cause, userMessage: "The request could not be audited, so it was not forwarded." });
    this.name = "AuditUnavailableError";
  }
}

/** The event itself cannot be stored (a bug in the caller): it is refused, never spooled. */
export class AuditEventError extends AppError {
  constructor(message: string, cause?: unknown) {
    super("INTERNAL", message, { cause, userMessage: "The request could not be audited, so it was not forwarded." });
    this.name = "AuditEventError";
  }
}

/** Another live process holds this worker id's spool. */
export class AuditSpoolLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditSpoolLockedError";
  }
}
