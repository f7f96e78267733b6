import { apiReadVia, getAuditEvent } from "@/lib/audit/query";
import { dashboardCheckpointKeys } from "@/lib/audit/trusted-keys";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** GET /api/v1/audit/{seq}: one event, its semantic actions and its place in the hash chain. */
export const GET = apiRoute<{ seq: string }>("read", async ({ actor, params }) =>
  getAuditEvent(getDb(), actor, params.seq, { via: apiReadVia(actor), checkpointKeys: dashboardCheckpointKeys() }),
);

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
