import { z } from "zod";
import { createTaskInput } from "@/lib/tasks/tasks";
import { TASK_STATUSES } from "@/lib/tasks/view";
import type { OpenApiOperation } from "../registry";
import { dateTime, nextCursor, nullableDateTime, pageQuery } from "../schemas";

const taskSchema = z.object({
  id: z.string(),
  purpose: z.string(),
  policyYaml: z.string(),
  policyVersion: z.number().int(),
  scope: z.string().meta({ description: "Layer 1: entries service:environment:effect, space-separated, canonical; \"\" allows nothing. Fixed when the task was created; every token carries it." }),
  status: z.enum(["active", "ended", "expired", "revoked"]),
  createdAt: dateTime,
  expiresAt: dateTime,
  endedAt: nullableDateTime,
  endedReason: z.string().nullable(),
  agent: z.object({ id: z.string(), name: z.string(), status: z.enum(["active", "suspended"]) }),
  createdBy: z.object({ email: z.string() }).nullable(),
});
const taskResponse = z.object({ task: taskSchema });
/** A kill switch's answer: `changed: false` when it was pulled already (nothing changed or recorded; `message` says what happened and when). */
const switchAnswer = { changed: z.boolean(), message: z.string().optional() };
const tokenMeta = z.object({ jti: z.string(), kid: z.string(), issuedAt: dateTime, expiresAt: dateTime, revokedAt: nullableDateTime, issuedBy: z.object({ email: z.string() }).nullable() });
const id = { id: "The task's id (uuid)." };

export const taskOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/tasks",
    operationId: "listTasks",
    summary: "List tasks",
    tags: ["tasks"],
    permission: "read",
    query: z.object({
      agent: z.string().optional().meta({ description: "Only this agent's tasks." }),
      status: z.enum(TASK_STATUSES).optional().meta({ description: "Only tasks in this status, as listed: `expired` includes an active task past its expiry, `active` excludes it." }),
      ...pageQuery,
    }),
    responses: { 200: { description: "Newest first, a page at a time.", schema: z.object({ tasks: z.array(taskSchema), nextCursor }) } },
  },
  {
    method: "post",
    path: "/api/v1/tasks",
    operationId: "createTask",
    summary: "Create a task (agent, purpose, scope, allowlist policy, time to live)",
    description:
      "The scope (`railway:staging:read github:*:write`, or `none`) bounds the task whatever its policy says, and can never be widened afterwards: a wider scope needs a new task. " +
      "Without one the task gets exactly what its policy reaches at creation (`*:*:irreversible` for a policy that holds unlisted actions or runs in report mode).",
    tags: ["tasks"],
    permission: "tasks:write",
    body: createTaskInput,
    notFound: "`agentId` names no agent (`issues` names the field).",
    responses: { 201: { description: "The new task.", schema: taskResponse } },
  },
  { method: "get", path: "/api/v1/tasks/{id}", operationId: "getTask", summary: "Get a task", tags: ["tasks"], permission: "read", pathParams: id, responses: { 200: { description: "The task.", schema: taskResponse } } },
  {
    method: "get",
    path: "/api/v1/tasks/{id}/scope",
    operationId: "checkTaskScope",
    summary: "The task's scope next to its policy, with a warning for every rule outside the scope",
    tags: ["tasks"],
    permission: "read",
    pathParams: id,
    responses: {
      200: {
        description: "Rules outside the scope never apply: the proxy refuses those actions (`token_scope`) before the policy is consulted.",
        schema: z.object({
          taskId: z.string(),
          scope: z.string(),
          scopeText: z.string(),
          policyVersion: z.number().int(),
          warnings: z.array(z.object({ ruleId: z.string().nullable(), message: z.string() })),
          policyErrors: z.array(z.string()).nullable(),
        }),
      },
    },
  },
  {
    method: "post",
    path: "/api/v1/tasks/{id}/end",
    operationId: "endTask",
    summary: "End a task early (its tokens stop working everywhere within a second)",
    tags: ["tasks"],
    permission: "tasks:write",
    pathParams: id,
    responses: {
      200: {
        description: "The ended task; `changed: false` and a `message` saying which and when if it was over already (ended, revoked with its agent, or expired): nothing changed or recorded.",
        schema: z.object({ task: taskSchema, ...switchAnswer }),
      },
    },
  },
  {
    method: "get",
    path: "/api/v1/tasks/{id}/tokens",
    operationId: "listTaskTokens",
    summary: "List the tokens minted for a task (metadata only)",
    tags: ["tokens"],
    permission: "read",
    pathParams: id,
    query: z.object(pageQuery),
    responses: { 200: { description: "Newest first, a page at a time.", schema: z.object({ tokens: z.array(tokenMeta), nextCursor }) } },
  },
  {
    method: "post",
    path: "/api/v1/tasks/{id}/tokens",
    operationId: "mintTaskToken",
    summary: "Mint a task token: the agent's only credential, returned once",
    tags: ["tokens"],
    permission: "tasks:write",
    pathParams: id,
    responses: { 201: { description: "The token (never shown again).", schema: z.object({ token: z.string(), jti: z.string(), kid: z.string(), expiresAt: dateTime }) } },
  },
  {
    method: "post",
    path: "/api/v1/tokens/{jti}/revoke",
    operationId: "revokeTaskToken",
    summary: "Revoke one task token",
    tags: ["tokens"],
    permission: "tasks:write",
    pathParams: { jti: "The token's jti." },
    responses: {
      200: { description: "Revoked; `changed: false` and a `message` saying when if it was revoked already (nothing changed or recorded).", schema: z.object({ jti: z.string(), revoked: z.literal(true), ...switchAnswer }) },
    },
  },
  {
    method: "post",
    path: "/api/v1/keys/rotate",
    operationId: "rotateSigningKeys",
    summary: "Rotate the task-token signing key (old keys verify until their tokens expire)",
    tags: ["keys"],
    permission: "settings:write",
    responses: { 200: { description: "The new key and the retiring ones.", schema: z.object({ kid: z.string(), retiring: z.array(z.object({ kid: z.string(), verifyUntil: dateTime })) }) } },
  },
  {
    method: "get",
    path: "/api/v1/tasks/{id}/report",
    operationId: "getTaskReport",
    summary: "A signed PDF report of the task (or a kept report's PDF or detached signature)",
    description:
      "Without `report`: generates the report (recorded as `audit.report_generated`), returns the PDF with its detached signature in `X-Bulkhead-Report-Signature` (base64url JSON) and keeps both for 15 minutes under `X-Bulkhead-Report-Id`. With `report=ID`: that report's PDF (`format=pdf`) or signature (`format=sig`). Verify offline with `bulkhead audit verify-report`.",
    tags: ["tasks"],
    permission: "read",
    pathParams: id,
    query: z.object({ format: z.enum(["pdf", "sig"]).optional(), report: z.string().optional() }),
    responses: { 200: { description: "application/pdf, or the signature as application/json." } },
  },
  {
    method: "get",
    path: "/api/v1/ca",
    operationId: "getInterceptionCa",
    summary: "Download the TLS interception CA certificate (PEM) for agent trust stores",
    tags: ["keys"],
    permission: "read",
    responses: { 200: { description: "application/x-pem-file" } },
  },
];
