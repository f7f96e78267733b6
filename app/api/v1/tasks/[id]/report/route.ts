import { z } from "zod";
import { dashboardCheckpointKeys } from "@/lib/audit/trusted-keys";
import { loadReportKeyConfig } from "@/lib/config/process-keys";
import { getDb } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { apiRoute } from "@/lib/http/route";
import { keepReport, keptReport } from "@/lib/reports/cache";
import { generateTaskReport } from "@/lib/reports/generate";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

const query = z.object({ format: z.enum(["pdf", "sig"]).default("pdf"), report: z.uuid().optional() });

/**
 * GET /api/v1/tasks/{id}/report?format=pdf: a new signed PDF report of the task (its detached
 * signature in X-Bulkhead-Report-Signature, base64url JSON, and kept for 15 minutes under
 * X-Bulkhead-Report-Id). With `report=ID`: that kept PDF (format=pdf) or its signature (format=sig).
 */
export const GET = apiRoute<{ id: string }>("read", async ({ actor, request, params }) => {
  const q = query.safeParse(Object.fromEntries(new URL(request.url).searchParams));
  if (!q.success) throw new AppError("INVALID_INPUT", "format must be pdf or sig, report a report id.");
  let generated = q.data.report ? keptReport(actor, params.id, q.data.report) : null;
  let id = q.data.report ?? null;
  if (q.data.report && !generated) throw new AppError("NOT_FOUND", "No such report: reports are kept for 15 minutes, for the person who generated them.");
  if (!generated) {
    if (q.data.format === "sig") throw new AppError("INVALID_INPUT", "A signature needs the report it signs: pass report=ID.");
    generated = await generateTaskReport(getDb(), actor, params.id, { checkpointKeys: dashboardCheckpointKeys(), reportKey: loadReportKeyConfig(), via: "api" });
    id = keepReport(actor, generated);
  }
  const signature = JSON.stringify(generated.signature, null, 2);
  if (q.data.format === "sig") {
    return new Response(`${signature}\n`, { headers: { "Content-Type": "application/json", "Content-Disposition": `attachment; filename="${generated.filename}.sig"`, "Cache-Control": "no-store" } });
  }
  return new Response(new Uint8Array(generated.pdf), {
    headers: {
      "Content-Type": "application/pdf",
      "Content-Disposition": `attachment; filename="${generated.filename}"`,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "X-Bulkhead-Report-Id": id!,
      "X-Bulkhead-Report-Signature": Buffer.from(signature).toString("base64url"),
    },
  });
}, { query: { names: ["format", "report"] } });

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
