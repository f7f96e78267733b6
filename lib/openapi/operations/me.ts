import { z } from "zod";
import type { OpenApiOperation } from "../registry";
import { actorSchema } from "../schemas";
import { reauthenticateInput } from "@/lib/auth/step-up";

export const meOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/me",
    operationId: "getMe",
    summary: "Who the request authenticates as",
    tags: ["session"],
    permission: "read",
    responses: { 200: { description: "The acting user or API key.", schema: z.object({ actor: actorSchema }) } },
  },
  {
    method: "post",
    path: "/api/v1/session/reauthenticate",
    operationId: "reauthenticate",
    summary: "Confirm the session's password (step-up)",
    description:
      "For dashboard sessions only: after the password is checked (throttled like a sign-in: 429 with Retry-After), " +
      "changes that answer `step_up_required` (vault credentials, widening policies, API keys, users and roles, service " +
      "descriptors, the inventory) are allowed for BULKHEAD_STEP_UP_MINUTES. API keys never need it.",
    tags: ["session"],
    permission: "read",
    body: reauthenticateInput,
    responses: { 200: { description: "When the session counts as authenticated from.", schema: z.object({ authenticatedAt: z.string() }) } },
  },
];
