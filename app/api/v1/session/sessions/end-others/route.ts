import { endOtherSessions } from "@/lib/auth/manage-sessions";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

/** "Sign out everywhere else": every session of the caller but this one. */
export const POST = apiRoute("read", async ({ actor }) => endOtherSessions(getDb(), actor));
