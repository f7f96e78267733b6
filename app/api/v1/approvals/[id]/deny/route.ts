import { decideApproval, denyApprovalInput } from "@/lib/approvals/decide-approval";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

// As approve: the body is optional, and read whenever one is sent.
export const POST = apiRoute<{ id: string }>("approvals:decide", async ({ actor, params, json }) => {
  const { note } = await json(denyApprovalInput, { whenEmpty: {} });
  return { approval: await decideApproval(getDb(), actor, params.id, "deny", note) };
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
