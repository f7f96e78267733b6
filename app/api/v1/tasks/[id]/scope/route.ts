import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { checkTaskScope } from "@/lib/tasks/scope";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** The scope next to the stored policy; a rule outside the scope is a warning, never applied. */
export const GET = apiRoute<{ id: string }>("read", async ({ actor, params }) => checkTaskScope(getDb(), actor, params.id));

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
