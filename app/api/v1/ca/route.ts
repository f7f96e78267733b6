import { NextResponse } from "next/server";
import { getDb } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { apiRoute } from "@/lib/http/route";
import { getCaCertificatePem } from "@/lib/tls/ca-public";

/**
 * GET /api/v1/ca: the interception CA certificate as a PEM download, for agents' trust stores.
 *
 * The certificate is public by nature, but like every other route it needs `read`; going through
 * apiRoute means API keys work too (a provisioning script fetches it with a Bearer key) and
 * errors keep the one JSON error shape. apiRoute answers JSON, so the handler only looks the
 * certificate up and this wrapper writes the PEM. A GET changes nothing: before the CA exists
 * (first start creates it, or `bulkhead ca cert`) the answer is 404.
 */
const lookUp = (found: { pem?: string }) =>
  apiRoute("read", async () => {
    const ca = await getCaCertificatePem(getDb());
    if (!ca) {
      throw new AppError("NOT_FOUND", "There is no interception CA yet.", {
        userMessage: "There is no interception CA yet: start Bulkhead or run `bulkhead ca cert`.",
      });
    }
    found.pem = ca.certPem;
    return null;
  });

export async function GET(request: Request, segment: { params: Promise<Record<string, string>> }): Promise<NextResponse> {
  const found: { pem?: string } = {};
  const response = await lookUp(found)(request, segment);
  const pem = found.pem;
  if (pem === undefined) return response;
  return new NextResponse(pem.endsWith("\n") ? pem : `${pem}\n`, {
    status: 200,
    headers: {
      "Content-Type": "application/x-pem-file",
      "Content-Disposition": 'attachment; filename="bulkhead-ca.pem"',
      // Seen immediately after a rotation; never stored by shared caches (the request was authenticated).
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
}
