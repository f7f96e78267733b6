/**
 * The single error model. Expected failures are AppErrors with a stable machine-readable code;
 * anything else is a bug and is reported as an internal error without details.
 */
export type AppErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "INVALID_INPUT"
  | "PAYLOAD_TOO_LARGE"
  | "CONFLICT"
  | "CSRF"
  | "STEP_UP_REQUIRED"
  | "RATE_LIMITED"
  | "IDEMPOTENCY_KEY_REUSED"
  | "IDEMPOTENCY_KEY_IN_PROGRESS"
  | "CONFIG"
  | "DATABASE_UNAVAILABLE"
  | "MIGRATION"
  | "INTERNAL";

const STATUS: Record<AppErrorCode, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INVALID_INPUT: 400,
  PAYLOAD_TOO_LARGE: 413,
  CONFLICT: 409,
  CSRF: 403,
  // Signed in, but this change needs a recent password or identity-provider confirmation.
  STEP_UP_REQUIRED: 403,
  RATE_LIMITED: 429,
  // An Idempotency-Key sent again with a different request (lib/http/idempotency.ts).
  IDEMPOTENCY_KEY_REUSED: 422,
  // An Idempotency-Key whose first request is still running.
  IDEMPOTENCY_KEY_IN_PROGRESS: 409,
  CONFIG: 500,
  DATABASE_UNAVAILABLE: 503,
  MIGRATION: 500,
  INTERNAL: 500,
};

export interface AppErrorOptions {
  /** Safe to show to the user; defaults to the message. */
  userMessage?: string;
  statusCode?: number;
  /** Field-level details for validation errors. */
  details?: unknown;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: AppErrorCode;
  readonly statusCode: number;
  readonly userMessage: string;
  readonly details: unknown;

  constructor(code: AppErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.statusCode = options.statusCode ?? STATUS[code];
    this.userMessage = options.userMessage ?? message;
    this.details = options.details;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/**
 * A kill switch pulled again: the token was revoked, the task is over, the agent is suspended (or
 * active) already, and nothing was changed or recorded. A CONFLICT where a person acted on a page
 * that was out of date (the dashboard says what happened and when); the API and the CLI answer it
 * as done, with `changed: false` and the same words, because the state asked for holds (revoking
 * is idempotent there, as an OAuth token revocation is) and a script pulling a switch in an
 * incident must not stop on one that someone else pulled first. `current` is the thing as it is.
 */
export class AlreadyDoneError<T = unknown> extends AppError {
  readonly current: T;

  constructor(message: string, current: T, details?: unknown) {
    super("CONFLICT", message, { details });
    this.name = "AlreadyDoneError";
    this.current = current;
  }
}
