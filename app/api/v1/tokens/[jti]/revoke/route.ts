import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { revokeTaskToken } from "@/lib/identity/task-tokens";

export const POST = apiRoute<{ jti: string }>("tasks:write", async ({ actor, params }) => {
  await revokeTaskToken(getDb(), actor, params.jti);
  return { jti: params.jti, revoked: true };
});
