/**
 * Service descriptors are data: which hosts a service answers on, which protocol it speaks and
 * how its operations map to effects and resources. Built-ins live next to this file; custom
 * services are loaded from YAML with the same schema (see `registry.ts`).
 */
import { z } from "zod";
import { environmentNameSchema } from "@/lib/semantics/inventory";

export const effectSchema = z.enum(["read", "write", "destructive", "irreversible"]);

const jsonPrimitive = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** Conditions on a JSON body (REST) or on resolved arguments (GraphQL), keyed by dotted path. */
export const whenSchema = z.record(z.string().min(1), jsonPrimitive);

const hostPattern = z
  .string()
  .regex(/^(?:\*\.)?[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/, "a lower-case host name, optionally starting with '*.'");

const endpointPaths = z.array(z.string().startsWith("/")).min(1).optional();

export const restRouteSchema = z.strictObject({
  /** HTTP method(s), or "*" for any. */
  method: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** Path template: literal segments, `{name}` for one segment, `{name+}` for the rest (last only). */
  path: z.string().startsWith("/"),
  operation: z.string().min(1),
  /** Defaults to the method's effect (GET read, POST/PUT/PATCH write, DELETE destructive). */
  effect: effectSchema.optional(),
  /** Resource template, e.g. "{owner}/{repo}"; defaults to the request path. */
  resource: z.string().optional(),
  resourceKind: z.string().optional(),
  /** Route applies only when the JSON body matches (e.g. `{ force: true }`). */
  when: whenSchema.optional(),
});

export const restConfigSchema = z.strictObject({
  /** First matching route wins. */
  routes: z.array(restRouteSchema).default([]),
  /** Match literal segments and extract resources case-insensitively (GitHub does). */
  caseInsensitive: z.boolean().default(false),
  /**
   * Whether the server may read a route's path parameters from the body as well (Laravel's
   * `$request->id` takes the body's `id` before the route's `{id}`): then a body that names one of
   * the resource's path parameters with another value is also judged on the resource that value
   * names. On by default (an API's framework is not known); off for an API known to read path
   * parameters from the path alone whose bodies use the same names for other things (GitHub's
   * `generate` takes the new repository's `owner`).
   */
  bodyNamesPathParameters: z.boolean().default(true),
});

export const graphqlFieldSchema = z.strictObject({
  /** Top-level field name (not alias). */
  name: z.string().min(1),
  effect: effectSchema,
  /** Dotted argument path naming the resource (e.g. "volumeId", "input.projectId"). */
  resourceArg: z.string().optional(),
  resourceKind: z.string().optional(),
  when: whenSchema.optional(),
});

export const graphqlLimitsSchema = z.strictObject({
  /** Deepest nesting of selection sets. */
  maxDepth: z.number().int().min(1).max(1000).default(15),
  /** Aliased fields (aliases let one document run a field many times). */
  maxAliases: z.number().int().min(0).max(10_000).default(30),
  /** Fields selected, at every level. */
  maxFields: z.number().int().min(1).max(100_000).default(1000),
});

export const graphqlConfigSchema = z.strictObject({
  /** Paths that speak GraphQL; omitted means every path of the service. */
  paths: endpointPaths,
  /** Per-field overrides; first match (by name and `when`) wins. */
  fields: z.array(graphqlFieldSchema).default([]),
  /** Argument names that identify resources, in priority order. */
  resourceArgs: z.array(z.string().min(1)).default(["id"]),
  /** A subscription keeps a stream open and can trigger work: a write unless the service says otherwise. */
  subscriptionEffect: effectSchema.default("write"),
  /** What one document may ask for, counted over every operation with fragments expanded. */
  limits: graphqlLimitsSchema.default(() => graphqlLimitsSchema.parse({})),
  /** Known persisted queries: sha256 hash (or document id) → query text. */
  persistedQueries: z.record(z.string().min(1), z.string().min(1)).default({}),
});

export const sqlConfigSchema = z.strictObject({
  paths: endpointPaths,
  /** `json`: SQL in a JSON field; `text`: the whole body is SQL. */
  bodyFormat: z.enum(["json", "text"]).default("json"),
  queryField: z.string().min(1).default("query"),
  /**
   * A JSON field holding a list of statement objects, each read with `queryField` (and
   * `databaseField`): a batch or transaction (Neon's `{"queries": [{"query": …}, …]}`). Read
   * beside `queryField`: a body may carry either or both, and every statement is judged.
   */
  batchField: z.string().min(1).optional(),
  databaseField: z.string().min(1).optional(),
  /** Fixed database name when the request does not carry one. */
  database: z.string().min(1).optional(),
  /**
   * The service's own functions known to change nothing, as PostgreSQL stores their names:
   * `name` covers unqualified calls, `schema.name` calls qualified with that schema. Every other
   * function that is not a known read-only built-in makes the statement at least a write.
   */
  readOnlyFunctions: z
    .array(z.string().regex(/^[^\s.]+(?:\.[^\s.]+)?$/, "a function name, optionally qualified: name or schema.name"))
    .default([]),
});

export const mcpToolSchema = z.strictObject({
  /** Tool name or glob pattern; first match wins. */
  name: z.string().min(1),
  effect: effectSchema,
  /** Argument (dotted path) naming the resource the tool acts on. */
  resourceArg: z.string().optional(),
});

export const mcpMethodSchema = z.strictObject({
  /** A JSON-RPC method this server accepts beyond MCP's own, exactly as sent (case-sensitive). */
  name: z.string().min(1).max(200),
  effect: effectSchema,
});

export const mcpConfigSchema = z.strictObject({
  paths: endpointPaths,
  tools: z.array(mcpToolSchema).default([]),
  unknownToolEffect: effectSchema.default("write"),
  /** Methods outside MCP that the server accepts; any other non-MCP method is refused. MCP's own methods cannot be redefined. */
  methods: z.array(mcpMethodSchema).default([]),
});

const cidr = z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, "a CIDR such as 10.0.0.0/8 or fd00::/8");

/** How the proxy treats the service's traffic (not used to classify). */
export const proxyConfigSchema = z.strictObject({
  /**
   * `intercept`: TLS is terminated so method, path and body rules apply (the default).
   * `passthrough`: only host and port are checked; the tunnel's contents are not inspected, so
   * it is classified as one irreversible `tunnel` action that a rule must allow explicitly.
   */
  tls: z.enum(["intercept", "passthrough"]).default("intercept"),
  /** Private or loopback ranges this (internal) service may resolve to. Nothing else is allowed. */
  internalAddresses: z.array(cidr).default([]),
});

export const serviceDescriptorSchema = z
  .strictObject({
    // Bounded: an id is shown in pages, scope warnings and every audit event's actions, and named in forms (deleting it).
    id: z.string().max(64, "at most 64 characters").regex(/^[a-z0-9][a-z0-9_-]*$/, "lower-case letters, digits, '-' and '_'"),
    title: z.string().optional(),
    hosts: z.array(hostPattern).min(1),
    /** Defaults to 443 for https and 80 for http. */
    ports: z.array(z.number().int().min(1).max(65535)).min(1).optional(),
    scheme: z.enum(["https", "http"]).default("https"),
    /** Protocol for every path not claimed by another protocol's `paths`. */
    protocol: z.enum(["rest", "graphql", "sql-http", "mcp"]),
    /** Every action of this service belongs to this environment (overrides the inventory). */
    environment: environmentNameSchema.optional(),
    rest: restConfigSchema.optional(),
    graphql: graphqlConfigSchema.optional(),
    sql: sqlConfigSchema.optional(),
    mcp: mcpConfigSchema.optional(),
    proxy: proxyConfigSchema.default(() => proxyConfigSchema.parse({})),
  })
  .refine((d) => d.id !== "unknown", { message: '"unknown" is reserved for hosts no service claims', path: ["id"] });

export type ServiceDescriptorInput = z.input<typeof serviceDescriptorSchema>;
export type ServiceDescriptor = z.output<typeof serviceDescriptorSchema>;
export type RestConfig = z.output<typeof restConfigSchema>;
export type RestRoute = z.output<typeof restRouteSchema>;
export type RestRouteInput = z.input<typeof restRouteSchema>;
export type GraphqlConfig = z.output<typeof graphqlConfigSchema>;
export type GraphqlField = z.output<typeof graphqlFieldSchema>;
export type SqlConfig = z.output<typeof sqlConfigSchema>;
export type McpConfig = z.output<typeof mcpConfigSchema>;
export type ProxyConfig = z.output<typeof proxyConfigSchema>;
export type Protocol = ServiceDescriptor["protocol"];
export type When = z.output<typeof whenSchema>;

/** Defaults for a protocol's config when the descriptor leaves it out. */
export const defaultConfigs = {
  rest: (): RestConfig => restConfigSchema.parse({}),
  graphql: (): GraphqlConfig => graphqlConfigSchema.parse({}),
  sql: (): SqlConfig => sqlConfigSchema.parse({}),
  mcp: (): McpConfig => mcpConfigSchema.parse({}),
};
