import { endOwnSession } from "@/lib/auth/manage-sessions";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** Ends one of the caller's own sessions; another person's session id is 404. */
export const DELETE = apiRoute<{ id: string }>("read", async ({ actor, params }) => ({ session: await endOwnSession(getDb(), actor, params.id) }));

export const { GET, HEAD, POST, PUT, PATCH, OPTIONS } = methodsNotAllowed(["DELETE"]);
