import { NextResponse } from "next/server";
import { publishedAuditKeys } from "@/lib/audit/published-keys";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/**
 * GET /api/v1/audit/keys, also at /.well-known/bulkhead-audit-keys.json (next.config.ts): the
 * public keys that verify audit checkpoints. Public on purpose: an auditor checks published
 * checkpoints offline with them, and they hold nothing secret.
 */
export function GET(): NextResponse {
  return NextResponse.json(publishedAuditKeys(), { headers: { "Cache-Control": "public, max-age=300" } });
}

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
