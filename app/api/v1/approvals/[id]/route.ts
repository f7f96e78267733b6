import { getApprovalCard } from "@/lib/approvals/card";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute<{ id: string }>("read", async ({ actor, params, request }) => {
  const full = new URL(request.url).searchParams.get("body") === "full";
  return { approval: await getApprovalCard(getDb(), actor, params.id, { fullBody: full }) };
}, { query: { names: ["body"] } });

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
