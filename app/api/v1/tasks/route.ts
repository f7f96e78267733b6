import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { createTask, createTaskInput, listTasks } from "@/lib/tasks/tasks";

export const GET = apiRoute("read", async ({ actor, request }) => ({
  tasks: await listTasks(getDb(), actor, { agentId: new URL(request.url).searchParams.get("agent") ?? undefined }),
}), { query: { names: ["agent"] } });

export const POST = apiRoute("tasks:write", async ({ actor, json }) => ({ task: await createTask(getDb(), actor, await json(createTaskInput)) }), {
  status: 201,
});
