import { chainStatus } from "@/lib/audit/chain-status";
import { AUDIT_PAGE_QUERY, filterParams } from "@/lib/audit/filter";
import { apiReadVia, listAuditEvents } from "@/lib/audit/query";
import { dashboardCheckpointKeys } from "@/lib/audit/trusted-keys";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** GET /api/v1/audit: one page of the audit log (newest first) with the chain's status. */
export const GET = apiRoute("read", async ({ actor, request }) => {
  const db = getDb();
  const page = await listAuditEvents(db, actor, filterParams(new URL(request.url).searchParams), apiReadVia(actor));
  // Never waits: the last finished verification (a running one is reported as running).
  const chain = await chainStatus(db, { checkpointKeys: dashboardCheckpointKeys(), waitMs: 0 });
  return { ...page, chain };
}, { query: AUDIT_PAGE_QUERY });

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
