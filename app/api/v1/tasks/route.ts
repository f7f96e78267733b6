import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { createTask, createTaskInput, listTasksPage } from "@/lib/tasks/tasks";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute("read", async ({ actor, request }) => {
  const query = new URL(request.url).searchParams;
  const page = await listTasksPage(getDb(), actor, { agentId: query.get("agent") ?? undefined, status: query.get("status") ?? undefined, cursor: query.get("cursor") ?? undefined, limit: query.get("limit") ?? undefined });
  return { tasks: page.items, nextCursor: page.nextCursor };
}, { query: { names: ["agent", "status", "cursor", "limit"] } });

export const POST = apiRoute("tasks:write", async ({ actor, json }) => ({ task: await createTask(getDb(), actor, await json(createTaskInput)) }), {
  status: 201,
});

export const { PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET", "POST"]);
