import { z } from "zod";
import type { Permission } from "@/lib/auth/roles";

/**
 * One documented operation. Modules describe their routes with the same zod schemas their
 * handlers parse with; `buildOpenApiDocument` turns a list of these into OpenAPI 3.1.
 */
export interface OpenApiOperation {
  method: "get" | "post" | "put" | "patch" | "delete";
  /** OpenAPI form: `/api/v1/agents/{id}` for the route folder `app/api/v1/agents/[id]`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** The permission the handler's apiRoute requires; null for a public operation. */
  permission: Permission | null;
  pathParams?: Record<string, string>;
  /** The 404 of an operation whose body names another thing by id (a task's agent): what it says. */
  notFound?: string;
  /** Each property is one query parameter. */
  query?: z.ZodObject;
  /** JSON request body. */
  body?: z.ZodType;
  /** The body may be left out (an empty body reads as `{}`). */
  bodyOptional?: boolean;
  /** Success responses by status; error responses are added from the operation's shape. */
  responses: Record<number, { description: string; schema?: z.ZodType }>;
}

export type JsonSchema = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: "3.1.0";
  info: { title: string; version: string; description: string };
  servers: Array<{ url: string }>;
  tags: Array<{ name: string; description?: string }>;
  paths: Record<string, Record<string, unknown>>;
  components: { securitySchemes: Record<string, unknown>; schemas: Record<string, JsonSchema> };
}

const errorSchema = z.object({
  error: z.string().meta({ description: "Machine-readable reason, e.g. unauthenticated, forbidden, invalid_input." }),
  message: z.string(),
  details: z.unknown().optional(),
  issues: z
    .array(z.object({ path: z.string(), message: z.string() }))
    .optional()
    .meta({ description: "Each refused field (dotted path) with a sentence: for invalid input, and for any other error that concerns a field (a taken name's 409)." }),
});

function jsonSchema(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, target: "draft-2020-12", unrepresentable: "any" }) as JsonSchema;
  return rest;
}

const errorRef = { $ref: "#/components/schemas/Error" };
const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: errorRef } } });

const idempotencyKeyParameter = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "Makes a retry safe: a request sent again with the same key, method, path, query and body within 24 hours is answered with " +
    "the first answer (same status and body, header `Idempotent-Replayed: true`) without running again. Keys are per API key " +
    "or person. Answers with status 5xx, 401, 403 or 429 are not kept, so their retry runs. Downloads are never kept.",
  schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x21-\\x7E]+$" },
};

const replayedHeader = {
  description: "`true` when this is the stored answer to an earlier request with the same Idempotency-Key (the handler did not run again).",
  schema: { type: "string", enum: ["true"] },
};

function buildOperation(op: OpenApiOperation): Record<string, unknown> {
  const parameters: unknown[] = [];
  for (const [name, description] of Object.entries(op.pathParams ?? {})) {
    parameters.push({ name, in: "path", required: true, description, schema: { type: "string" } });
  }
  if (op.query) {
    const shape = jsonSchema(op.query, "input") as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, schema] of Object.entries(shape.properties ?? {})) {
      parameters.push({ name, in: "query", required: shape.required?.includes(name) ?? false, schema });
    }
  }
  // Every authenticated write takes an Idempotency-Key (lib/http/idempotency.ts, apiRoute).
  const idempotent = op.permission !== null && op.method !== "get";
  if (idempotent) parameters.push(idempotencyKeyParameter);
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(op.responses)) {
    responses[status] = r.schema ? { description: r.description, content: { "application/json": { schema: jsonSchema(r.schema, "output") } } } : { description: r.description };
    if (idempotent) (responses[status] as Record<string, unknown>).headers = { "Idempotent-Replayed": replayedHeader };
  }
  if (op.body || op.query || idempotent) responses["400"] = errorResponse("The request is not valid.");
  if (op.permission) {
    responses["401"] = errorResponse("No session, or the API key is missing, malformed, unknown, expired or revoked.");
    responses["403"] = errorResponse(
      `The role lacks \`${op.permission}\`, or (session only) the request is cross-site, or the change needs a recent re-authentication (\`step_up_required\`: POST /api/v1/session/reauthenticate).`,
    );
  }
  if (op.pathParams) responses["404"] = errorResponse(`No such resource (a malformed id is reported the same way).${op.notFound ? ` ${op.notFound}` : ""}`);
  else if (op.notFound) responses["404"] = errorResponse(op.notFound);
  if (idempotent) {
    const conflict = "`idempotency_key_in_progress` (with `Retry-After: 1`): a request with the same Idempotency-Key is still running; nothing was run.";
    const existing = responses["409"] as { description: string } | undefined;
    responses["409"] = existing ? { ...existing, description: `${existing.description} Also ${conflict}` } : errorResponse(conflict);
    responses["422"] ??= errorResponse("`idempotency_key_reused`: the Idempotency-Key was already used for a different request (method, path, query or body); nothing was run.");
  }
  return {
    operationId: op.operationId,
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    tags: op.tags,
    security: op.permission ? [{ apiKey: [] }, { session: [] }] : [],
    ...(op.permission ? { "x-bulkhead-permission": op.permission } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(op.body ? { requestBody: { required: !op.bodyOptional, content: { "application/json": { schema: jsonSchema(op.body, "input") } } } } : {}),
    responses,
  };
}

export function buildOpenApiDocument(
  operations: readonly OpenApiOperation[],
  info: { version: string; tags: OpenApiDocument["tags"] },
): OpenApiDocument {
  const paths: OpenApiDocument["paths"] = {};
  const ids = new Set<string>();
  for (const op of operations) {
    if (ids.has(op.operationId)) throw new Error(`OpenAPI: duplicate operationId ${op.operationId}`);
    ids.add(op.operationId);
    const item = (paths[op.path] ??= {});
    if (item[op.method]) throw new Error(`OpenAPI: ${op.method.toUpperCase()} ${op.path} is described twice`);
    item[op.method] = buildOperation(op);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Bulkhead API",
      version: info.version,
      description:
        "The admin API behind the Bulkhead dashboard. Authenticate with an API key (`Authorization: Bearer bk_…`, " +
        "created under Settings → API keys) or the dashboard session cookie; with the cookie, state-changing requests " +
        "must be same-origin and JSON. Secrets can be written but never read back.",
    },
    servers: [{ url: "/" }],
    // Tags used by operations but not described still get listed.
    tags: [...info.tags, ...[...new Set(operations.flatMap((o) => o.tags))].filter((t) => !info.tags.some((d) => d.name === t)).map((name) => ({ name }))],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", bearerFormat: "bk_<prefix>_<secret>", description: "An admin API key; it acts with its role." },
        session: {
          type: "apiKey",
          in: "cookie",
          name: "authjs.session-token",
          description:
            "The dashboard session (`__Host-authjs.session-token` over https). State changes must be same-origin JSON requests; dangerous ones need a re-authentication within the last few minutes (step-up).",
        },
      },
      schemas: { Error: jsonSchema(errorSchema, "output") },
    },
  };
}
