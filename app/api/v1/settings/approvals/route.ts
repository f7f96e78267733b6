import { approvalSettingsInput, getApprovalSettings, updateApprovalSettings } from "@/lib/approvals/settings";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute("read", async ({ actor }) => ({ settings: await getApprovalSettings(getDb(), actor) }));

export const PUT = apiRoute("settings:write", async ({ actor, json }) => ({ settings: await updateApprovalSettings(getDb(), actor, await json(approvalSettingsInput)) }));

export const { POST, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET", "PUT"]);
