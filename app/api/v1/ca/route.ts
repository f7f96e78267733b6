import { NextResponse } from "next/server";
import { getDb } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { apiRoute } from "@/lib/http/route";
import { getCaCertificatePem } from "@/lib/tls/ca-public";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/**
 * GET /api/v1/ca: the interception CA certificate as a PEM download, for agents' trust stores.
 * Public by nature, but like every route it needs `read` (API keys work, so provisioning scripts
 * can fetch it). A GET changes nothing: before the CA exists (the worker's first start creates
 * it, or `bulkhead ca cert`) the answer is 404.
 */
export const GET = apiRoute("read", async () => {
  const ca = await getCaCertificatePem(getDb());
  if (!ca) {
    throw new AppError("NOT_FOUND", "There is no interception CA yet.", {
      userMessage: "There is no interception CA yet: start Bulkhead or run `bulkhead ca cert`.",
    });
  }
  return new NextResponse(ca.certPem.endsWith("\n") ? ca.certPem : `${ca.certPem}\n`, {
    status: 200,
    headers: {
      "Content-Type": "application/x-pem-file",
      "Content-Disposition": 'attachment; filename="bulkhead-ca.pem"',
      // Seen immediately after a rotation; never stored by shared caches (the request was authenticated).
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
});

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
