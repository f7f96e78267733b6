import { exportByteStream, startAuditExport } from "@/lib/audit/export";
import { AUDIT_FILTER_QUERY, filterParams } from "@/lib/audit/filter";
import { apiReadVia } from "@/lib/audit/query";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/**
 * GET /api/v1/audit/export?format=csv|jsonl|ocsf&<filters>: every matching event, streamed in
 * chain order. Bad input and authorisation fail before the first byte (JSON errors); once the
 * download runs, it goes as fast as the client reads, and a client that disconnects cancels it.
 */
export const GET = apiRoute("read", async ({ actor, request }) => {
  const params = new URL(request.url).searchParams;
  const exp = await startAuditExport(getDb(), actor, { ...filterParams(params), format: params.get("format") ?? undefined }, { via: apiReadVia(actor) });
  return new Response(exportByteStream(exp), {
    status: 200,
    headers: {
      "Content-Type": exp.contentType,
      "Content-Disposition": `attachment; filename="${exp.filename}"`,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "X-Bulkhead-Export-Through-Seq": exp.throughSeq,
      // Event types are open-ended (never refused): a requested one the log has no event of is said here.
      // Printable ASCII only (a header cannot carry other text), and bounded.
      ...(exp.unmatchedTypes.length > 0 ? { "X-Bulkhead-Unmatched-Types": exp.unmatchedTypes.join("; ").replace(/[^\x20-\x7e]/g, "?").slice(0, 4000) } : {}),
      ...(exp.unmatchedOutcomes.length > 0 ? { "X-Bulkhead-Unmatched-Outcomes": exp.unmatchedOutcomes.join("; ").replace(/[^\x20-\x7e]/g, "?").slice(0, 4000) } : {}),
    },
  });
}, { query: { names: [...AUDIT_FILTER_QUERY.names, "format"], repeatable: AUDIT_FILTER_QUERY.repeatable } });

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
