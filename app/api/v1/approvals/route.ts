import { listApprovals } from "@/lib/approvals/card";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

export const GET = apiRoute("read", async ({ actor, request }) => {
  const params = Object.fromEntries(new URL(request.url).searchParams);
  return { approvals: await listApprovals(getDb(), actor, params) };
}, { query: { names: ["state", "task", "agent", "limit"] } });
