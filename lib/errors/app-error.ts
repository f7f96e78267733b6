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
