import { z } from "zod";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { limitParam } from "@/lib/validation/text";
import { listDeliveries } from "@/lib/webhooks/webhooks";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

const query = z.object({ webhook: z.uuid().optional(), limit: limitParam(500, 100) });

export const GET = apiRoute("settings:write", async ({ actor, request }) => {
  const q = query.parse(Object.fromEntries(new URL(request.url).searchParams));
  return { deliveries: await listDeliveries(getDb(), actor, { webhookId: q.webhook, limit: q.limit }) };
}, { query: { names: ["webhook", "limit"] } });

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
