import { loadIdentityConfig } from "@/lib/config/identity";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { appKeys } from "@/lib/identity/app-keys";
import { issueTaskToken, listTaskTokensPage } from "@/lib/identity/task-tokens";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** Token metadata only, newest first, a page at a time; a token itself is returned once, by POST. */
export const GET = apiRoute<{ id: string }>(
  "read",
  async ({ actor, params, request }) => {
    const url = new URL(request.url);
    const page = await listTaskTokensPage(getDb(), actor, params.id, { cursor: url.searchParams.get("cursor") ?? undefined, limit: url.searchParams.get("limit") ?? undefined });
    return { tokens: page.items, nextCursor: page.nextCursor };
  },
  { query: { names: ["cursor", "limit"] } },
);

export const POST = apiRoute<{ id: string }>(
  "tasks:write",
  async ({ actor, params }) => {
    const issued = await issueTaskToken(getDb(), actor, (await appKeys(getDb())).dashboardKey, loadIdentityConfig(), params.id);
    return { token: issued.token, jti: issued.jti, kid: issued.kid, expiresAt: issued.expiresAt.toISOString() };
  },
  { status: 201 },
);

export const { PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET", "POST"]);
