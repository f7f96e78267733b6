import { loadIdentityConfig } from "@/lib/config/identity";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { appKeys } from "@/lib/identity/app-keys";
import { issueTaskToken, listTaskTokens } from "@/lib/identity/task-tokens";

/** Token metadata only; a token itself is returned once, by POST. */
export const GET = apiRoute<{ id: string }>("read", async ({ actor, params }) => ({ tokens: await listTaskTokens(getDb(), actor, params.id) }));

export const POST = apiRoute<{ id: string }>(
  "tasks:write",
  async ({ actor, params }) => {
    const issued = await issueTaskToken(getDb(), actor, (await appKeys(getDb())).dashboardKey, loadIdentityConfig(), params.id);
    return { token: issued.token, jti: issued.jti, kid: issued.kid, expiresAt: issued.expiresAt.toISOString() };
  },
  { status: 201 },
);
