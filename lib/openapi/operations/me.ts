import { z } from "zod";
import type { OpenApiOperation } from "../registry";
import { actorSchema } from "../schemas";

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
];
