import { listApprovalsPage } from "@/lib/approvals/card";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute("read", async ({ actor, request }) => {
  const params = Object.fromEntries(new URL(request.url).searchParams);
  const page = await listApprovalsPage(getDb(), actor, params);
  return { approvals: page.items, nextCursor: page.nextCursor };
}, { query: { names: ["state", "task", "agent", "limit", "cursor"] } });

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
