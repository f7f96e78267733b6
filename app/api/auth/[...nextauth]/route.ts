import type { NextRequest } from "next/server";
import { authRoute } from "@/lib/auth/next-auth";
import { passwordSignInRoute } from "@/lib/auth/sign-in-route";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";

export function GET(request: NextRequest): Promise<Response> {
  return authRoute(request);
}

/** Password sign-ins that are throttled get 429 with Retry-After; everything else is next-auth's. */
export function POST(request: NextRequest): Promise<Response> {
  return passwordSignInRoute(request, loadAppConfig(), getDb(), authRoute);
}

/** next-auth has no endpoint for other methods: a JSON 405 naming the ones it has (lib/auth/auth-endpoints.ts). */
export const PUT = GET;
export const PATCH = GET;
export const DELETE = GET;
