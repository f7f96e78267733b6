import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { endTask } from "@/lib/tasks/tasks";

export const POST = apiRoute<{ id: string }>("tasks:write", async ({ actor, params }) => ({
  task: await endTask(getDb(), actor, params.id, actor.kind === "api_key" ? "ended through the API" : "ended by a person"),
}));
