import { AppError } from "@/lib/errors/app-error";

/**
 * The event is not durable, so the proxy must not forward the request it describes:
 * - `unwritable`: the local log could not be written (disk full, I/O error, a failed fsync);
 * - `backlog`: the log holds more unshipped events than BULKHEAD_AUDIT_WAL_HARD_LIMIT_MB allows
 *   (Postgres has been away or too slow for too long);
 * - `closed`: the writer is shutting down.
 */
export class AuditUnavailableError extends AppError {
  constructor(
    readonly reason: "closed" | "unwritable" | "backlog",
    message: string,
    cause?: unknown,
  ) {
    super("DATABASE_UNAVAILABLE", message, { cause, userMessage: "The request could not be audited, so it was not forwarded." });
    this.name = "AuditUnavailableError";
  }
}

/** Another live process holds this worker id's log. */
export class AuditWalLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditWalLockedError";
  }
}

/** A file in the log directory that this version cannot use; nothing was changed. */
export class AuditWalFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditWalFormatError";
  }
}
