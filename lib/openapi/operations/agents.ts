import { z } from "zod";
import { createAgentInput, listAgentsInput } from "@/lib/agents/agents";
import type { OpenApiOperation } from "../registry";
import { agentSchema, nextCursor, pageQuery } from "../schemas";

const agentResponse = z.object({ agent: agentSchema });
/** A kill switch's answer: `changed: false` when it was pulled already (nothing changed or recorded; `message` says since when). */
const switchAnswer = { changed: z.boolean(), message: z.string().optional() };
const agentSwitchResponse = z.object({ agent: agentSchema, ...switchAnswer });
const id = { id: "The agent's id (uuid)." };

export const agentOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/agents",
    operationId: "listAgents",
    summary: "List agents",
    tags: ["agents"],
    permission: "read",
    query: z.object({
      q: listAgentsInput.shape.query.meta({ description: "Matches name, description or owner email." }),
      status: listAgentsInput.shape.status,
      ...pageQuery,
    }),
    responses: { 200: { description: "Agents by name, a page at a time.", schema: z.object({ agents: z.array(agentSchema), nextCursor }) } },
  },
  {
    method: "post",
    path: "/api/v1/agents",
    operationId: "createAgent",
    summary: "Register an agent",
    tags: ["agents"],
    permission: "agents:write",
    body: createAgentInput,
    responses: { 201: { description: "The new agent.", schema: agentResponse } },
  },
  {
    method: "get",
    path: "/api/v1/agents/{id}",
    operationId: "getAgent",
    summary: "Get an agent",
    tags: ["agents"],
    permission: "read",
    pathParams: id,
    responses: { 200: { description: "The agent.", schema: agentResponse } },
  },
  {
    method: "post",
    path: "/api/v1/agents/{id}/suspend",
    operationId: "suspendAgent",
    summary: "Suspend an agent (revokes its active tasks)",
    tags: ["agents"],
    permission: "agents:write",
    pathParams: id,
    responses: {
      200: { description: "The agent, now suspended (`changed: false` and a `message` saying since when if it was suspended already: nothing changed or recorded).", schema: agentSwitchResponse },
    },
  },
  {
    method: "post",
    path: "/api/v1/agents/{id}/reactivate",
    operationId: "reactivateAgent",
    summary: "Reactivate a suspended agent",
    tags: ["agents"],
    permission: "agents:write",
    pathParams: id,
    responses: {
      200: { description: "The agent, now active (`changed: false` and a `message` if it was active already: nothing changed or recorded).", schema: agentSwitchResponse },
    },
  },
];
