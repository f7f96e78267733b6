import { listOwnSessions } from "@/lib/auth/manage-sessions";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

/** The caller's own dashboard sessions (`current` marks the one making this request). */
export const GET = apiRoute("read", async ({ actor }) => ({ sessions: await listOwnSessions(getDb(), actor) }));
