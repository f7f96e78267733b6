import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { listSandboxes, registerExternalSandbox, registerSandboxInput } from "@/lib/sandboxes/sandboxes";

export const GET = apiRoute("read", async ({ actor, request }) => {
  const query = new URL(request.url).searchParams;
  return { sandboxes: await listSandboxes(getDb(), actor, { live: query.get("state") !== "all", taskId: query.get("task") ?? undefined }) };
}, { query: { names: ["state", "task"] } });

// The dashboard cannot create namespaces (it runs unprivileged): POST registers a sandbox isolated
// elsewhere (a Kubernetes pod's address) for a task. Local sandboxes come from `bulkhead sandbox run`.
export const POST = apiRoute("tasks:write", async ({ actor, json }) => ({ sandbox: await registerExternalSandbox(getDb(), actor, await json(registerSandboxInput)) }), {
  status: 201,
});
