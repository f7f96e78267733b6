import { createApiKey, createApiKeyInput, listApiKeys } from "@/lib/apikeys";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

export const GET = apiRoute("users:read", async ({ actor }) => ({ apiKeys: await listApiKeys(getDb(), actor) }));

/** The response carries the new key; it is shown this once and cannot be retrieved again. */
export const POST = apiRoute("users:write", async ({ actor, json }) => createApiKey(getDb(), actor, await json(createApiKeyInput)), {
  status: 201,
});
