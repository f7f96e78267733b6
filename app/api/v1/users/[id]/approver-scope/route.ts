import { approverScopeInput, getApproverScope, setApproverScope } from "@/lib/approvals/approver-scope";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute<{ id: string }>("users:read", async ({ actor, params }) => ({ scope: await getApproverScope(getDb(), actor, params.id) }));

export const PUT = apiRoute<{ id: string }>("users:write", async ({ actor, params, json }) => ({ scope: await setApproverScope(getDb(), actor, params.id, await json(approverScopeInput)) }));

export const { POST, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET", "PUT"]);
