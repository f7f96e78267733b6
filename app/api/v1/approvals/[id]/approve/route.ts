import { approveAndAllow } from "@/lib/approvals/allow-rule";
import { decideApproval, decideApprovalInput } from "@/lib/approvals/decide-approval";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

// The body is optional; when one is sent it is read whatever its Content-Type (judged by the
// headers, a body without a Content-Type was dropped: its note and allowForTask ignored).
export const POST = apiRoute<{ id: string }>("approvals:decide", async ({ actor, params, json }) => {
  const { note, allowForTask } = await json(decideApprovalInput, { whenEmpty: {} });
  if (allowForTask) return { approval: await approveAndAllow(getDb(), actor, params.id, note) };
  return { approval: await decideApproval(getDb(), actor, params.id, "approve", note) };
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
