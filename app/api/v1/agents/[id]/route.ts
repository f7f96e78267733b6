import { getAgent } from "@/lib/agents/agents";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

export const GET = apiRoute<{ id: string }>("read", async ({ actor, params }) => ({ agent: await getAgent(getDb(), actor, params.id) }));
