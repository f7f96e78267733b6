import { endUserSessions } from "@/lib/auth/manage-sessions";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** Ends every dashboard session of the user (their API keys are not sessions: revoke those separately). */
export const POST = apiRoute<{ id: string }>("users:write", async ({ actor, params }) => {
  const { ended } = await endUserSessions(getDb(), actor, params.id);
  return { ended };
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
