import { endOtherSessions } from "@/lib/auth/manage-sessions";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** "Sign out everywhere else": every session of the caller but this one. */
export const POST = apiRoute("read", async ({ actor }) => endOtherSessions(getDb(), actor));

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
