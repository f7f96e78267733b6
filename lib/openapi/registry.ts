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
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(op.responses)) {
    responses[status] = r.schema ? { description: r.description, content: { "application/json": { schema: jsonSchema(r.schema, "output") } } } : { description: r.description };
  }
  if (op.body || op.query) responses["400"] = errorResponse("The request is not valid.");
  if (op.permission) {
    responses["401"] = errorResponse("No session, or the API key is missing, malformed, unknown, expired or revoked.");
    responses["403"] = errorResponse(
      `The role lacks \`${op.permission}\`, or (session only) the request is cross-site, or the change needs a recent re-authentication (\`step_up_required\`: POST /api/v1/session/reauthenticate).`,
    );
  }
  if (op.pathParams) responses["404"] = errorResponse("No such resource (a malformed id is reported the same way).");
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
