import { createApiKey, createApiKeyInput, listApiKeysPage } from "@/lib/apikeys";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute(
  "users:read",
  async ({ actor, request }) => {
    const url = new URL(request.url);
    const page = await listApiKeysPage(getDb(), actor, { cursor: url.searchParams.get("cursor") ?? undefined, limit: url.searchParams.get("limit") ?? undefined });
    return { apiKeys: page.items, nextCursor: page.nextCursor };
  },
  { query: { names: ["cursor", "limit"] } },
);

/** The response carries the new key; it is shown this once and cannot be retrieved again. */
export const POST = apiRoute("users:write", async ({ actor, json }) => createApiKey(getDb(), actor, await json(createApiKeyInput)), {
  status: 201,
});

export const { PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET", "POST"]);
