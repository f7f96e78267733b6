import { AppError } from "@/lib/errors/app-error";
import { errorResponse } from "@/lib/http/route";

/**
 * A path under /api/ that no route handler serves: a JSON 404 in the API's error shape, as every
 * other API answer is, rather than the dashboard's HTML page (an API client reads `error` and
 * `message`, not a page). Routes that exist are matched before this one. The path is not echoed.
 */
function notFound(): Response {
  const response = errorResponse(new AppError("NOT_FOUND", "There is no API endpoint at this path. GET /api/v1/openapi.json lists every endpoint."));
  response.headers.set("Cache-Control", "no-store");
  return response;
}

export const GET = notFound;
export const POST = notFound;
export const PUT = notFound;
export const PATCH = notFound;
export const DELETE = notFound;
