import { approvalOperations, webhookOperations } from "./operations/approvals";
import { taskOperations } from "./operations/tasks";
import { auditOperations } from "./operations/audit";
import { apiKeyOperations } from "./operations/api-keys";
import { agentOperations } from "./operations/agents";
import { credentialOperations } from "./operations/credentials";
import { meOperations } from "./operations/me";
import { openApiOperations } from "./operations/openapi";
import { sandboxOperations } from "./operations/sandboxes";
import { buildOpenApiDocument, type OpenApiDocument, type OpenApiOperation } from "./registry";

/**
 * Every documented /api/v1 operation. A module adds its routes by exporting an
 * `OpenApiOperation[]` from `lib/openapi/operations/<module>.ts` and appending it here;
 * tests/integration/apikeys/openapi.test.ts checks the routes on disk against this list.
 */
export const OPERATIONS: readonly OpenApiOperation[] = [
  ...meOperations,
  ...agentOperations,
  ...credentialOperations,
  ...apiKeyOperations,
  ...taskOperations,
  ...auditOperations,
  ...sandboxOperations,
  ...approvalOperations,
  ...webhookOperations,
  ...openApiOperations,
];

const TAGS = [
  { name: "session", description: "The caller's identity, dashboard sessions and password." },
  { name: "agents", description: "Registered AI agents." },
  { name: "tasks", description: "Assignments of an agent: purpose, allowlist, lifetime." },
  { name: "tokens", description: "Task tokens: the agents' only credentials." },
  { name: "approvals", description: "Held requests waiting for a person." },
  { name: "keys", description: "Signing keys and the interception CA." },
  { name: "credentials", description: "Upstream credentials the proxy injects; write-only secrets." },
  { name: "api-keys", description: "Keys for this API." },
  { name: "audit", description: "The hash-chained audit log: search, events, exports." },
  { name: "meta", description: "About the API itself." },
];

let cached: OpenApiDocument | null = null;

export function openApiDocument(): OpenApiDocument {
  cached ??= buildOpenApiDocument(OPERATIONS, { version: "1", tags: TAGS });
  return cached;
}
