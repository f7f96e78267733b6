import "server-only";
import { NextResponse } from "next/server";
import { ZodError, type z } from "zod";
import { loadAppConfig } from "@/lib/config/app";
import { AppError, isAppError } from "@/lib/errors/app-error";
import type { Actor } from "@/lib/auth/actor";
import { requireActor } from "@/lib/auth/current";
import type { Permission } from "@/lib/auth/roles";
import { checkJsonBody, checkSameOrigin, isSafeMethod } from "./csrf";

/** The one mapping from errors to HTTP responses for route handlers. */
export function errorResponse(error: unknown): NextResponse {
  if (error instanceof ZodError) {
    return NextResponse.json(
      { error: "invalid_input", message: "The request is not valid.", issues: error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) },
      { status: 400 },
    );
  }
  if (isAppError(error)) {
    return NextResponse.json(
      { error: error.code.toLowerCase(), message: error.userMessage, ...(error.details ? { details: error.details } : {}) },
      { status: error.statusCode },
    );
  }
  console.error("Unhandled error in route handler", error);
  return NextResponse.json({ error: "internal", message: "Something went wrong." }, { status: 500 });
}

interface RouteContext<P> {
  actor: Actor;
  request: Request;
  params: P;
  json<S extends z.ZodType>(schema: S): Promise<z.output<S>>;
}

/**
 * Wraps a route handler: every handler states the permission it needs, is authenticated and
 * authorised here (never by middleware alone), is CSRF-checked when it changes state, and maps
 * errors through errorResponse.
 */
export function apiRoute<P = Record<string, string>>(
  permission: Permission,
  handler: (ctx: RouteContext<P>) => Promise<unknown>,
  options: { status?: number } = {},
) {
  return async (request: Request, segment: { params: Promise<P> }): Promise<NextResponse> => {
    try {
      // Authenticate first (401 says "sign in"), then refuse cross-site use of the session cookie.
      const actor = await requireActor(permission);
      if (!isSafeMethod(request.method)) {
        const problem = checkSameOrigin(request, [new URL(loadAppConfig().publicUrl).origin]) ?? checkJsonBody(request);
        if (problem) throw new AppError("CSRF", `Refused: ${problem}.`);
      }
      const params = await segment.params;
      const json = async <S extends z.ZodType>(schema: S) => {
        let body: unknown;
        try {
          body = await request.json();
        } catch {
          throw new AppError("INVALID_INPUT", "The request body is not valid JSON.");
        }
        return schema.parse(body);
      };
      const result = await handler({ actor, request, params, json });
      return NextResponse.json(result, { status: options.status ?? 200 });
    } catch (error) {
      return errorResponse(error);
    }
  };
}
