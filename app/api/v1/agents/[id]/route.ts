import { getAgent } from "@/lib/agents/agents";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute<{ id: string }>("read", async ({ actor, params }) => ({ agent: await getAgent(getDb(), actor, params.id) }));

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
