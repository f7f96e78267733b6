import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { deleteWebhook } from "@/lib/webhooks/webhooks";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const DELETE = apiRoute<{ id: string }>("settings:write", async ({ actor, params }) => {
  await deleteWebhook(getDb(), actor, params.id);
  return { deleted: true };
});

export const { GET, HEAD, POST, PUT, PATCH, OPTIONS } = methodsNotAllowed(["DELETE"]);
