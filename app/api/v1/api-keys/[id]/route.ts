import { revokeApiKey } from "@/lib/apikeys";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** Revokes the key (the row is kept for the audit trail and the list). */
export const DELETE = apiRoute<{ id: string }>("users:write", async ({ actor, params }) => ({
  apiKey: await revokeApiKey(getDb(), actor, params.id),
}));

export const { GET, HEAD, POST, PUT, PATCH, OPTIONS } = methodsNotAllowed(["DELETE"]);
