/** Shared helpers for the semantics tests. */
import { canonicalizeRequest, type RawRequest } from "@/lib/semantics/canonical";
import { classify } from "@/lib/semantics/classify";
import { createInventory, type Inventory } from "@/lib/semantics/inventory";
import { defaultRegistry, registryWith, type ServiceRegistry } from "@/lib/semantics/registry";
import { exampleDescriptors } from "@/lib/semantics/descriptors/examples";
import type { CanonicalRequest, Classification } from "@/lib/semantics/types";

export interface RequestOptions {
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  /** Defaults to application/json when a body is given. */
  contentType?: string | null;
}

export function canonical(method: string, url: string, options: RequestOptions = {}): CanonicalRequest {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined && options.contentType !== null) headers["content-type"] = options.contentType ?? "application/json";
  const raw: RawRequest = { method, url, headers, body: options.body ?? null };
  const result = canonicalizeRequest(raw);
  if (!result.ok) throw new Error(`unexpected rejection ${result.code}: ${result.reason}`);
  return result.request;
}

/** Built-ins plus the example custom services (storage-api, shop-graphql, pg-http, ops-mcp). */
export const registry: ServiceRegistry = registryWith(exampleDescriptors);
export const builtIns: ServiceRegistry = defaultRegistry();

export const inventory: Inventory = createInventory([
  { environment: "production", service: "railway", resources: ["vol_123", "env_prod", "svc_prod"] },
  { environment: "staging", service: "railway", resources: ["vol_stg", "env_stg", "svc_stg"] },
  { environment: "staging", service: "github", resources: ["acme/sandbox"] },
  { environment: "production", service: "github", resources: ["acme/app"] },
  { environment: "staging", service: "pg-http", resources: ["app_staging"] },
  { environment: "production", service: "pg-http", resources: ["payroll"] },
  { environment: "staging", hosts: ["*.staging.example.com"] },
]);

export function classifyRequest(method: string, url: string, options: RequestOptions = {}): Classification {
  return classify(canonical(method, url, options), registry, inventory);
}

export function json(value: unknown): string {
  return JSON.stringify(value);
}

export const RAILWAY = "https://backboard.railway.com/graphql/v2";
