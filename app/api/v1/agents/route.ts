import { createAgent, createAgentInput, listAgentsPage } from "@/lib/agents/agents";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute("read", async ({ actor, request }) => {
  const url = new URL(request.url);
  // Passed as sent: a status that is not one is a 400 from listAgents, never "every agent".
  const status = url.searchParams.get("status");
  const page = await listAgentsPage(getDb(), actor, {
    query: url.searchParams.get("q") ?? undefined,
    status: status === null || status === "" ? undefined : (status as "active"),
    cursor: url.searchParams.get("cursor") ?? undefined,
    limit: url.searchParams.get("limit") ?? undefined,
  });
  return { agents: page.items, nextCursor: page.nextCursor };
}, { query: { names: ["status", "q", "cursor", "limit"] } });

export const POST = apiRoute(
  "agents:write",
  async ({ actor, json }) => ({ agent: await createAgent(getDb(), actor, await json(createAgentInput)) }),
  { status: 201 },
);

export const { PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET", "POST"]);
