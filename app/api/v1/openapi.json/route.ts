import { NextResponse } from "next/server";
import { openApiDocument } from "@/lib/openapi/document";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/**
 * Public on purpose: the document describes the API (as the source code does) and holds no
 * data, and API tooling can fetch it without a credential. Every operation it lists still
 * checks its own authentication and role.
 */
export function GET(): NextResponse {
  return NextResponse.json(openApiDocument(), { headers: { "Cache-Control": "public, max-age=300" } });
}

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
