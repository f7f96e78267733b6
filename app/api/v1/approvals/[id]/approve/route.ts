import { approveAndAllow } from "@/lib/approvals/allow-rule";
import { decideApproval, decideApprovalInput } from "@/lib/approvals/decide-approval";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

export const POST = apiRoute<{ id: string }>("approvals:decide", async ({ actor, params, request, json }) => {
  const hasBody = request.headers.get("content-length") !== "0" && request.headers.get("content-type") !== null;
  const { note, allowForTask } = hasBody ? await json(decideApprovalInput) : { note: undefined, allowForTask: false };
  if (allowForTask) return { approval: await approveAndAllow(getDb(), actor, params.id, note) };
  return { approval: await decideApproval(getDb(), actor, params.id, "approve", note) };
});
