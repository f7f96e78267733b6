import { AppError } from "@/lib/errors/app-error";
import { assertCan, type Actor } from "@/lib/auth/actor";

/**
 * Managing API keys needs `users:write`: a key is an identity with a role, like a user. API keys
 * themselves may not create or revoke keys, so a leaked key cannot mint a successor that outlives
 * its own revocation.
 */
export function assertCanManageApiKeys(actor: Actor): void {
  assertCan(actor, "users:write");
  if (actor.kind === "api_key") {
    throw new AppError("FORBIDDEN", "API keys may not manage API keys", {
      userMessage: "API keys cannot create or revoke API keys; sign in to the dashboard instead.",
    });
  }
}
