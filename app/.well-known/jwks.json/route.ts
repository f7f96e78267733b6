import { NextResponse } from "next/server";
import { getDb } from "@/lib/db/client";
import { loadVerificationKeys } from "@/lib/identity/key-store";
import { VerificationKeySet } from "@/lib/identity/key-ring";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const dynamic = "force-dynamic";

/** Public keys that verify task tokens now (active and retiring); public by design. */
export async function GET() {
  const keys = await VerificationKeySet.fromRecords(await loadVerificationKeys(getDb()));
  return NextResponse.json(keys.jwks(new Date()), { headers: { "cache-control": "public, max-age=60" } });
}

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
