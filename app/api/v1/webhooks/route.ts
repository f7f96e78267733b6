import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { appKeys } from "@/lib/identity/app-keys";
import { createWebhook, createWebhookInput, listWebhooks } from "@/lib/webhooks/webhooks";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute("settings:write", async ({ actor }) => ({ webhooks: await listWebhooks(getDb(), actor, loadAppConfig().webhooks) }));

export const POST = apiRoute(
  "settings:write",
  async ({ actor, json }) => {
    const db = getDb();
    return { webhook: await createWebhook(db, actor, (await appKeys(db)).dashboardKey, loadAppConfig().webhooks, await json(createWebhookInput)) };
  },
  { status: 201 },
);

export const { PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET", "POST"]);
