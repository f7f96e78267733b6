/**
 * Task-token failures. Every rejection carries one machine-readable `reason` so the proxy can
 * answer with a precise status and audit event. Messages never echo the token or its claims.
 */
import { AppError } from "@/lib/errors/app-error";

export const TOKEN_ERROR_REASONS = [
  "malformed",
  "alg_not_allowed",
  "typ_mismatch",
  "kid_missing",
  "kid_invalid",
  "kid_unknown",
  "key_retired",
  "header_key_forbidden",
  "signature_invalid",
  "claim_missing",
  "claim_invalid",
  "iss_mismatch",
  "aud_mismatch",
  "expired",
  "not_yet_valid",
  "task_revoked",
  "task_expired",
  "agent_suspended",
  "jti_revoked",
  "lifetime_exceeded",
  "jti_unknown",
  "scope_mismatch",
] as const;

export type TokenErrorReason = (typeof TOKEN_ERROR_REASONS)[number];

/** Claims every task token must carry. */
export type RequiredClaim = "iss" | "aud" | "sub" | "task" | "scope" | "jti" | "iat" | "nbf" | "exp";

const MESSAGES: Record<TokenErrorReason, string> = {
  malformed: "task token is malformed",
  alg_not_allowed: "task token algorithm is not allowed",
  typ_mismatch: "task token type is not a Bulkhead task token",
  kid_missing: "task token has no key id",
  kid_invalid: "task token key id has an invalid shape",
  kid_unknown: "task token key id is unknown",
  key_retired: "task token was signed by a retired key",
  header_key_forbidden: "task token header carries a forbidden parameter",
  signature_invalid: "task token signature is invalid",
  claim_missing: "task token is missing a required claim",
  claim_invalid: "task token has a claim of the wrong type or shape",
  iss_mismatch: "task token issuer does not match",
  aud_mismatch: "task token audience does not match",
  expired: "task token has expired",
  not_yet_valid: "task token is not yet valid",
  task_revoked: "task token's task has ended or was revoked",
  task_expired: "task token's task has expired",
  agent_suspended: "task token's agent is suspended",
  jti_revoked: "task token was revoked",
  lifetime_exceeded: "task token lives longer than Bulkhead ever issues tokens for",
  jti_unknown: "task token was not issued by Bulkhead for this task",
  scope_mismatch: "task token's scope claim is not within its task's scope",
};

export class TokenError extends AppError {
  readonly reason: TokenErrorReason;
  /** For claim_missing / claim_invalid: which claim; for header_key_forbidden: which header. */
  readonly field: string | undefined;

  constructor(reason: TokenErrorReason, field?: string) {
    // `field` is always one of our own fixed names, never attacker text.
    super("UNAUTHENTICATED", field ? `${MESSAGES[reason]} (${field})` : MESSAGES[reason], {
      details: field ? { reason, field } : { reason },
    });
    this.name = "TokenError";
    this.reason = reason;
    this.field = field;
  }
}

export function isTokenError(error: unknown): error is TokenError {
  return error instanceof TokenError;
}

/** Refusal to mint (caller error, not an attack). */
export class TokenMintError extends AppError {
  readonly reason: "task_ended" | "invalid_ttl" | "invalid_input";
  constructor(reason: TokenMintError["reason"], message: string) {
    super(reason === "task_ended" ? "CONFLICT" : "INVALID_INPUT", message);
    this.name = "TokenMintError";
    this.reason = reason;
  }
}

/** What the person running the agent can do about a refused token, where there is something. */
const NEXT_STEP: Partial<Record<TokenErrorReason, string>> = {
  expired: "mint a new token for the task (its page, or bulkhead token mint --task ID) while the task is active",
  jti_revoked: "mint a new token for the task (its page, or bulkhead token mint --task ID)",
  task_expired: "the task is over; create a new task for further work",
  task_revoked: "the task is over; create a new task for further work",
  agent_suspended: "an admin must reactivate the agent, then create a new task (its tasks were revoked)",
  malformed: "send the whole token exactly as minted (three dot-separated parts)",
};

/** The proxy's reason for a refused token: the fixed sentence, never the token or its claims, and the next step. */
export function tokenRefusalReason(error: TokenError): string {
  const next = NEXT_STEP[error.reason];
  return `task token refused: ${error.message}${next ? `; ${next}` : ""}`;
}
