import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { appKeys } from "@/lib/identity/app-keys";
import { rotateKeys } from "@/lib/identity/key-store";
import { MAX_TOKEN_TTL_SECONDS } from "@/lib/tasks/settings";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const POST = apiRoute("settings:write", async ({ actor }) => {
  const change = await rotateKeys(getDb(), actor, (await appKeys(getDb())).dashboardKey, { maxTokenTtlSeconds: MAX_TOKEN_TTL_SECONDS });
  return { kid: change.added.kid, retiring: change.retiring.map((r) => ({ kid: r.kid, verifyUntil: r.verifyUntil.toISOString() })) };
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
