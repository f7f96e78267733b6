/**
 * A route handler file answers the methods it exports; for any other, Next.js answered a bare 405:
 * no body, no `Allow` header (which RFC 9110 requires of a 405), no `Cache-Control`. So
 * `DELETE /api/v1/agents/{id}` or `GET /api/v1/tokens/{jti}/revoke` told an API client nothing
 * an error of the API tells (`error`, `message`), where a path that does not exist at all is the
 * API's JSON 404. Every route file exports the methods it does not serve from here:
 *
 *   export const { PUT, PATCH, DELETE } = methodsNotAllowed(["GET", "POST"]);
 *
 * (and HEAD as well where the route has no GET: Next.js answers HEAD with GET where there is one)
 * (`tests/unit/http/method-not-allowed.test.ts` checks that every route file does.) Nothing is
 * read or authenticated first: which methods a path has is no secret (the OpenAPI document lists
 * them), and the answer is the same signed in or out.
 */
export const ROUTE_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

type Handler = (request: Request) => Response;

/**
 * What methodsNotAllowed gives: HEAD too, for a route without GET (Next.js answers HEAD with GET
 * otherwise), and OPTIONS, answered with the methods the route serves (Next.js's own OPTIONS
 * listed every method a route file exports, the refused ones included).
 */
type NotServed = Record<RouteMethod | "HEAD" | "OPTIONS", Handler>;

/** The methods a route serves as an `Allow` value: HEAD comes with GET, OPTIONS always (Next.js answers both). */
export function allowHeader(served: readonly RouteMethod[]): string {
  const methods: string[] = [...served];
  if (served.includes("GET")) methods.splice(methods.indexOf("GET") + 1, 0, "HEAD");
  methods.push("OPTIONS");
  return methods.join(", ");
}

export function methodNotAllowedResponse(method: string, served: readonly RouteMethod[]): Response {
  return Response.json(
    { error: "method_not_allowed", message: `This endpoint does not answer ${method.slice(0, 20)}; it answers ${served.join(" and ")}. GET /api/v1/openapi.json lists every endpoint.` },
    { status: 405, headers: { Allow: allowHeader(served), "Cache-Control": "no-store" } },
  );
}

/** A handler for each method the route does not serve, answering 405 with the ones it does. */
export function methodsNotAllowed(served: readonly RouteMethod[]): NotServed {
  const handler: Handler = (request) => methodNotAllowedResponse(request.method, served);
  const options: Handler = () => new Response(null, { status: 204, headers: { Allow: allowHeader(served), "Cache-Control": "no-store" } });
  return { ...(Object.fromEntries([...ROUTE_METHODS, "HEAD"].map((m) => [m, handler])) as Record<RouteMethod | "HEAD", Handler>), OPTIONS: options };
}
