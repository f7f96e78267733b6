import { ownSessions } from "@/lib/auth/manage-sessions";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** The caller's own dashboard sessions (`current` marks the one making this request), and how many there are. */
export const GET = apiRoute("read", async ({ actor }) => ownSessions(getDb(), actor));

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
