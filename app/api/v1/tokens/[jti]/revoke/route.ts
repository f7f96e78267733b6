import { getDb } from "@/lib/db/client";
import { AlreadyDoneError } from "@/lib/errors/app-error";
import { apiRoute } from "@/lib/http/route";
import { revokeTaskToken } from "@/lib/identity/task-tokens";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** Revoked already: 200 with `changed: false` and when it was (revocation is idempotent; nothing recorded again). */
export const POST = apiRoute<{ jti: string }>("tasks:write", async ({ actor, params }) => {
  try {
    await revokeTaskToken(getDb(), actor, params.jti);
    return { jti: params.jti, revoked: true, changed: true };
  } catch (error) {
    if (error instanceof AlreadyDoneError) return { jti: params.jti, revoked: true, changed: false, message: error.message };
    throw error;
  }
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
