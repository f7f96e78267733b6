import { approverScopeInput, getApproverScope, setApproverScope } from "@/lib/approvals/approver-scope";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

export const GET = apiRoute<{ id: string }>("users:read", async ({ actor, params }) => ({ scope: await getApproverScope(getDb(), actor, params.id) }));

export const PUT = apiRoute<{ id: string }>("users:write", async ({ actor, params, json }) => ({ scope: await setApproverScope(getDb(), actor, params.id, await json(approverScopeInput)) }));
