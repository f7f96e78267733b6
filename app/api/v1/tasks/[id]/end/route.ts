import { getDb } from "@/lib/db/client";
import { AlreadyDoneError } from "@/lib/errors/app-error";
import { apiRoute } from "@/lib/http/route";
import { endTask } from "@/lib/tasks/tasks";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** Over already (ended, revoked, expired): 200 with `changed: false`, the task as it is and what happened when. */
export const POST = apiRoute<{ id: string }>("tasks:write", async ({ actor, params }) => {
  try {
    return { task: await endTask(getDb(), actor, params.id, actor.kind === "api_key" ? "ended through the API" : "ended by a person"), changed: true };
  } catch (error) {
    if (error instanceof AlreadyDoneError) return { task: error.current, changed: false, message: error.message };
    throw error;
  }
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
