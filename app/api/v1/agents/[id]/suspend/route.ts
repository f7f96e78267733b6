import { setAgentSuspended } from "@/lib/agents/agents";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

export const POST = apiRoute<{ id: string }>("agents:write", async ({ actor, params }) => ({
  agent: await setAgentSuspended(getDb(), actor, params.id, true),
}));
