import { getDb } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { apiRoute } from "@/lib/http/route";
import { listSandboxesPage, registerExternalSandbox, registerSandboxInput } from "@/lib/sandboxes/sandboxes";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute("read", async ({ actor, request }) => {
  const query = new URL(request.url).searchParams;
  const state = query.get("state") || "live";
  // Refused, never read as "live": `state=ALL` or `state=stopped` must not answer with a subset.
  if (state !== "live" && state !== "all") {
    throw new AppError("INVALID_INPUT", "state must be live or all", { details: { fieldErrors: { state: ["state must be live or all."] } } });
  }
  const page = await listSandboxesPage(getDb(), actor, {
    live: state === "live",
    taskId: query.get("task") ?? undefined,
    cursor: query.get("cursor") ?? undefined,
    limit: query.get("limit") ?? undefined,
  });
  return { sandboxes: page.items, nextCursor: page.nextCursor };
}, { query: { names: ["state", "task", "cursor", "limit"] } });

// The dashboard cannot create namespaces (it runs unprivileged): POST registers a sandbox isolated
// elsewhere (a Kubernetes pod's address) for a task. Local sandboxes come from `bulkhead sandbox run`.
export const POST = apiRoute("tasks:write", async ({ actor, json }) => ({ sandbox: await registerExternalSandbox(getDb(), actor, await json(registerSandboxInput)) }), {
  status: 201,
});

export const { PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET", "POST"]);
