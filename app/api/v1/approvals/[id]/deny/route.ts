import { decideApproval, decideApprovalInput } from "@/lib/approvals/decide-approval";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

export const POST = apiRoute<{ id: string }>("approvals:decide", async ({ actor, params, request, json }) => {
  const hasBody = request.headers.get("content-length") !== "0" && request.headers.get("content-type") !== null;
  const { note } = hasBody ? await json(decideApprovalInput) : { note: undefined };
  return { approval: await decideApproval(getDb(), actor, params.id, "deny", note) };
});
