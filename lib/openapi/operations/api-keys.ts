import { z } from "zod";
import { createApiKeyInput } from "@/lib/apikeys/schemas";
import type { OpenApiOperation } from "../registry";
import { apiKeySchema, nextCursor, pageQuery } from "../schemas";

export const apiKeyOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/api-keys",
    operationId: "listApiKeys",
    summary: "List API keys",
    tags: ["api-keys"],
    permission: "users:read",
    query: z.object(pageQuery),
    responses: { 200: { description: "API keys, newest first, a page at a time; never the key or its hash.", schema: z.object({ apiKeys: z.array(apiKeySchema), nextCursor }) } },
  },
  {
    method: "post",
    path: "/api/v1/api-keys",
    operationId: "createApiKey",
    summary: "Create an API key",
    description: "Only with a session: API keys cannot create API keys. The role may not exceed the creator's.",
    tags: ["api-keys"],
    permission: "users:write",
    body: createApiKeyInput,
    responses: {
      201: {
        description: "The new key. `key` is shown this once and cannot be retrieved again.",
        schema: z.object({ apiKey: apiKeySchema, key: z.string().meta({ description: "bk_<prefix>_<secret>" }) }),
      },
    },
  },
  {
    method: "delete",
    path: "/api/v1/api-keys/{id}",
    operationId: "revokeApiKey",
    summary: "Revoke an API key",
    description:
      "Takes effect on the next request. Only with a session: API keys cannot revoke API keys. Every approval the key approved or voted for that could still release a request (approved and not used yet, or pending) is cancelled with it (`approver_key_revoked`); what its creator approved through a session stands.",
    tags: ["api-keys"],
    permission: "users:write",
    pathParams: { id: "The API key's id (uuid)." },
    responses: { 200: { description: "The revoked key.", schema: z.object({ apiKey: apiKeySchema }) } },
  },
];
