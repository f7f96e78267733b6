import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { getTask } from "@/lib/tasks/tasks";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute<{ id: string }>("read", async ({ actor, params }) => ({ task: await getTask(getDb(), actor, params.id) }));

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
