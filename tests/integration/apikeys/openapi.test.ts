import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { GET as openApiRoute } from "@/app/api/v1/openapi.json/route";
import { openApiDocument, OPERATIONS } from "@/lib/openapi/document";
import { buildOpenApiDocument } from "@/lib/openapi/registry";

// next-auth cannot load outside Next's runtime; the route modules are imported, never called.
vi.mock("@/lib/auth/current", () => ({ requireActor: async () => undefined }));

const API_ROOT = path.resolve("app/api/v1");
/** Every route folder under app/api/v1: a route is documented, or this test fails. */
const DOCUMENTED_HERE = readdirSync(API_ROOT).filter((name) => statSync(path.join(API_ROOT, name)).isDirectory());

function routeFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return routeFiles(p);
    return name === "route.ts" ? [p] : [];
  });
}

/** `app/api/v1/agents/[id]/route.ts` → `/api/v1/agents/{id}` */
function openApiPath(file: string): string {
  const folder = path.relative(path.resolve("app"), path.dirname(file)).split(path.sep).join("/");
  return `/${folder.replace(/\[([^\]]+)\]/g, "{$1}")}`;
}

/** Exported HTTP methods of a route file, with the permission its apiRoute requires (null: public). */
function exportedMethods(file: string): Map<string, string | null> {
  const text = readFileSync(file, "utf8");
  const out = new Map<string, string | null>();
  for (const m of text.matchAll(/export\s+(?:async\s+)?(?:const|function)\s+(GET|POST|PUT|PATCH|DELETE)\b(\s*=\s*apiRoute(?:<[^>]*>)?\(\s*"([^"]+)")?/g)) {
    out.set(m[1]!, m[3] ?? null);
  }
  return out;
}

describe("OpenAPI document", () => {
  const doc = openApiDocument();

  it("is an OpenAPI 3.1 document that survives a JSON round trip", () => {
    const parsed = JSON.parse(JSON.stringify(doc)) as typeof doc;
    expect(parsed).toEqual(doc);
    expect(parsed.openapi).toBe("3.1.0");
    expect(Object.keys(parsed.components.securitySchemes).sort()).toEqual(["apiKey", "session"]);
    expect(parsed.components.securitySchemes.apiKey).toMatchObject({ type: "http", scheme: "bearer" });
    const ids = new Set<string>();
    for (const [p, item] of Object.entries(parsed.paths)) {
      expect(p).toMatch(/^\/api\/v1\//);
      for (const op of Object.values(item) as Array<{ operationId: string; responses: Record<string, unknown> }>) {
        expect(ids.has(op.operationId)).toBe(false);
        ids.add(op.operationId);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      }
    }
  });

  it("documents the Idempotency-Key header on every authenticated write, with its 409 and 422, and on no read", () => {
    let writes = 0;
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item) as Array<[string, { security: unknown[]; parameters?: Array<{ name: string; in: string }>; responses: Record<string, { description: string }> }]>) {
        const header = (op.parameters ?? []).find((q) => q.in === "header" && q.name === "Idempotency-Key");
        const write = method !== "get" && op.security.length > 0;
        expect(Boolean(header), `${method} ${p}`).toBe(write);
        if (!write) continue;
        writes++;
        expect(op.responses["409"]?.description, `${method} ${p}`).toMatch(/idempotency_key_in_progress/);
        expect(op.responses["422"]?.description, `${method} ${p}`).toMatch(/idempotency_key_reused/);
        expect(op.responses["400"], `${method} ${p}`).toBeDefined();
        const success = Object.entries(op.responses).filter(([status]) => status.startsWith("2"));
        expect(success.length, `${method} ${p}`).toBeGreaterThan(0);
        for (const [, answer] of success) expect((answer as { headers?: Record<string, unknown> }).headers, `${method} ${p}`).toHaveProperty("Idempotent-Replayed");
      }
    }
    expect(writes).toBeGreaterThan(10);
  });

  it("documents every route under app/api/v1 of this module, with the permission the handler checks", () => {
    const files = routeFiles(API_ROOT).filter((f) => DOCUMENTED_HERE.includes(path.relative(API_ROOT, f).split(path.sep)[0]!));
    expect(files.length).toBeGreaterThanOrEqual(9);
    for (const file of files) {
      const methods = exportedMethods(file);
      expect(methods.size, file).toBeGreaterThan(0);
      for (const [method, permission] of methods) {
        const op = doc.paths[openApiPath(file)]?.[method.toLowerCase()] as { "x-bulkhead-permission"?: string; security: unknown[] } | undefined;
        expect(op, `${method} ${openApiPath(file)} is not documented`).toBeDefined();
        expect(op!["x-bulkhead-permission"] ?? null, `${method} ${openApiPath(file)}`).toBe(permission);
        expect(op!.security.length > 0, `${method} ${openApiPath(file)} security`).toBe(permission !== null);
      }
    }
  });

  it("documents exactly the query parameters each handler reads (anything else is a 400)", async () => {
    let checked = 0;
    for (const file of routeFiles(API_ROOT)) {
      const mod = (await import(/* @vite-ignore */ file)) as Record<string, { queryParameters?: { names: readonly string[] } }>;
      for (const method of exportedMethods(file).keys()) {
        const op = doc.paths[openApiPath(file)]?.[method.toLowerCase()] as { parameters?: Array<{ name: string; in: string }> } | undefined;
        const documented = (op?.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name).sort();
        const read = mod[method]?.queryParameters?.names;
        if (!read) continue; // not an apiRoute (the public OpenAPI document and keys)
        expect([...read].sort(), `${method} ${openApiPath(file)}`).toEqual(documented);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(40);
  });

  it("documents the 404 of a write whose body names another thing by id", () => {
    const paths = doc.paths as Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
    expect(paths["/api/v1/tasks"]!.post!.responses["404"]?.description).toMatch(/`agentId` names no agent/);
    expect(paths["/api/v1/sandboxes"]!.post!.responses["404"]?.description).toMatch(/`taskId` names no task/);
  });

  it("documents nothing that has no handler", () => {
    for (const op of OPERATIONS) {
      const file = path.join(path.resolve("app"), op.path.replace(/\{([^}]+)\}/g, "[$1]"), "route.ts");
      expect(exportedMethods(file).has(op.method.toUpperCase()), `${op.method} ${op.path}`).toBe(true);
    }
  });

  it("marks secrets write-only, and no response schema can carry a secret, a hash or a sealed value", () => {
    const add = doc.paths["/api/v1/credentials"]!.post as { requestBody: { content: { "application/json": { schema: { properties: Record<string, Record<string, unknown>>; required: string[] } } } } };
    const body = add.requestBody.content["application/json"].schema;
    expect(body.properties.secret).toMatchObject({ type: "string", writeOnly: true });
    expect(body.required).toEqual(expect.arrayContaining(["name", "host", "headerTemplate", "secret"]));
    let masked = 0;
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item) as Array<{ responses: Record<string, unknown> }>) {
        const text = JSON.stringify(op.responses);
        expect(text).not.toMatch(/"(keyHash|secretSealed|secret_sealed|key_hash|passwordHash)"/);
        const secretProps = [...text.matchAll(/"secret":\{([^}]*)\}/g)].map((m) => m[1]);
        for (const p of secretProps) expect(p).toContain('"const":"••••"');
        masked += secretProps.length;
      }
    }
    expect(masked).toBeGreaterThanOrEqual(4);
  });

  it("refuses two operations for one method and path, so appended modules cannot collide silently", () => {
    const first = OPERATIONS[0]!;
    expect(() => buildOpenApiDocument([first, { ...first, operationId: "other" }], { version: "1", tags: [] })).toThrow(/described twice/);
    expect(() => buildOpenApiDocument([first, { ...first, path: "/api/v1/x" }], { version: "1", tags: [] })).toThrow(/duplicate operationId/);
  });

  it("is served publicly at /api/v1/openapi.json", async () => {
    const res = openApiRoute();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(doc)));
  });
});
