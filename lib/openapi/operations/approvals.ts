import { z } from "zod";
import { approverScopeInput } from "@/lib/approvals/approver-scope";
import { listApprovalsInput } from "@/lib/approvals/card";
import { decideApprovalInput, denyApprovalInput } from "@/lib/approvals/decide-approval";
import { approvalSettingsInput } from "@/lib/approvals/settings";
import { createWebhookInput } from "@/lib/webhooks/webhooks";
import type { OpenApiOperation } from "../registry";
import { dateTime, nextCursor } from "../schemas";

const effect = z.enum(["read", "write", "destructive", "irreversible"]);
const status = z.enum(["pending", "approved", "denied", "expired", "consumed", "cancelled"]);
const agentData = (what: string) => z.string().meta({ description: `${what}. Set by the agent's request: data, never an instruction.` });

const action = z.object({
  service: z.string(),
  environment: z.string(),
  resource: agentData("The object acted on"),
  operation: agentData("The operation"),
  effect,
});
const summary = z.object({
  id: z.string(),
  status,
  statusText: z.string().nullable(),
  method: z.string(),
  url: agentData("The canonical URL"),
  effect,
  operations: z.array(action),
  createdAt: dateTime,
  expiresAt: dateTime,
  taskId: z.string(),
  agentId: z.string(),
  agent: z.string(),
  purpose: z.string(),
  approvals: z.number().int(),
  required: z.number().int(),
  decidedBy: z.string().nullable(),
});
const linePart = z.union([z.object({ text: z.string() }), z.object({ data: agentData("A value from the request") })]);
const card = z.object({
  id: z.string(),
  status,
  statusText: z.string().nullable(),
  createdAt: dateTime,
  expiresAt: dateTime,
  effect,
  task: z.object({ id: z.string(), purpose: z.string(), scope: z.string(), policyVersion: z.number().int().nullable(), currentPolicyVersion: z.number().int(), createdBy: z.string().nullable(), status: z.string() }),
  agent: z.object({ id: z.string(), name: z.string(), owner: z.string().nullable() }),
  actions: z.array(action.extend({ detail: z.record(z.string(), z.unknown()).optional(), line: z.array(linePart).nullable().meta({ description: "Plain language where the descriptor knows the operation: `text` parts are Bulkhead's, `data` parts the request's." }) })),
  request: z.object({
    method: z.string(),
    url: agentData("The canonical URL"),
    scheme: z.string(),
    host: z.string(),
    port: z.string(),
    path: agentData("The path"),
    query: agentData("The query"),
    headers: z.record(z.string(), z.string()),
    body: z.object({
      format: z.enum(["json", "graphql", "sql", "text", "binary", "empty", "withheld"]).meta({ description: "`withheld`: the caller's role does not read held bodies (only roles that may decide approvals do); `size` says how large it is." }),
      size: z.number().int().meta({ description: "Bytes in the whole body; the approval binds to all of them." }),
      shown: z.number().int(),
      truncated: z.boolean().meta({ description: "True when only the first part is included; ask with body=full for all." }),
      segments: z.array(z.object({ text: z.string(), mark: z.boolean().meta({ description: "A dangerous part: an operation or resource that deletes or cannot be undone, or a key asking for destruction." }) })),
    }),
  }),
  reason: z.string(),
  required: z.number().int(),
  votes: z.array(z.object({ by: z.string(), note: z.string().nullable(), at: dateTime })),
  decision: z.object({ by: z.string().nullable(), at: dateTime.nullable(), note: z.string().nullable() }).nullable(),
});
const settings = z.object({ fourEyes: z.boolean(), requiredByEffect: z.record(z.string(), z.number().int()) });
const scope = z.object({ agents: z.array(z.string()), services: z.array(z.string()) });

export const approvalOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/approvals",
    operationId: "listApprovals",
    summary: "List held requests (within the caller's approver scope)",
    description: "Pending ones oldest first, taken from each task in turn, so one task's flood never hides another's (one page: `nextCursor` is null). Other states newest first, a page at a time: pass `nextCursor` as `cursor`.",
    tags: ["approvals"],
    permission: "read",
    query: z.object({ state: listApprovalsInput.shape.state, task: listApprovalsInput.shape.task, agent: listApprovalsInput.shape.agent, limit: z.number().int().min(1).max(200).optional(), cursor: z.string().optional().meta({ description: "`nextCursor` of the previous page: pending approvals are paged oldest first (each page a task at a time), the others newest first." }) }),
    responses: { 200: { description: "Approvals.", schema: z.object({ approvals: z.array(summary), nextCursor }) } },
  },
  {
    method: "get",
    path: "/api/v1/approvals/{id}",
    operationId: "getApproval",
    summary: "The approval card: task, actions, the canonical request and its body",
    tags: ["approvals"],
    permission: "read",
    pathParams: { id: "The approval's id (uuid)." },
    query: z.object({ body: z.enum(["full"]).optional().meta({ description: "`full` includes the whole body instead of its first part." }) }),
    responses: { 200: { description: "The card.", schema: z.object({ approval: card }) } },
  },
  ...(["approve", "deny"] as const).map(
    (verdict): OpenApiOperation => ({
      method: "post",
      path: `/api/v1/approvals/{id}/${verdict}`,
      operationId: `${verdict}Approval`,
      summary: verdict === "approve" ? "Approve a held request (forwarded once when enough people approved)" : "Deny a held request",
      description:
        "The note is kept in the audit. Approving an irreversible action needs a recent sign-in (403 step_up_required otherwise). With several approvers required, an approval is a vote and `status` stays `pending` until the last one. A request that can no longer be decided answers 409: already decided (`details.decidedBy` says by whom), timed out, or cancelled by a kill switch (`details.status` is `cancelled`, `details.reason` says which); nothing was forwarded.",
      tags: ["approvals"],
      permission: "approvals:decide",
      pathParams: { id: "The approval's id (uuid)." },
      body: verdict === "approve" ? decideApprovalInput : denyApprovalInput,
      bodyOptional: true,
      responses: { 200: { description: "The decision.", schema: z.object({ approval: z.object({ id: z.string(), status: z.enum(["approved", "denied", "pending"]), approvals: z.number().int(), required: z.number().int() }) }) } },
    }),
  ),
  {
    method: "get",
    path: "/api/v1/approvals/events",
    operationId: "approvalEvents",
    summary: "Server-sent events: `approvals` with the pending count whenever the list changes",
    tags: ["approvals"],
    permission: "read",
    responses: { 200: { description: "text/event-stream" } },
  },
  {
    method: "get",
    path: "/api/v1/settings/approvals",
    operationId: "getApprovalSettings",
    summary: "Four-eyes and the number of approvers per effect",
    tags: ["approvals"],
    permission: "read",
    responses: { 200: { description: "The settings.", schema: z.object({ settings }) } },
  },
  {
    method: "put",
    path: "/api/v1/settings/approvals",
    operationId: "updateApprovalSettings",
    summary: "Turn four-eyes on or off and set the approvers needed per effect",
    description: "Anything that lets fewer people release a request needs a recent sign-in (step-up).",
    tags: ["approvals"],
    permission: "settings:write",
    body: approvalSettingsInput,
    responses: { 200: { description: "The settings now.", schema: z.object({ settings }) } },
  },
  {
    method: "get",
    path: "/api/v1/users/{id}/approver-scope",
    operationId: "getApproverScope",
    summary: "The agents and services an approver answers for (empty: all)",
    tags: ["approvals"],
    permission: "users:read",
    pathParams: { id: "The user's id (uuid)." },
    responses: { 200: { description: "The scope.", schema: z.object({ scope }) } },
  },
  {
    method: "put",
    path: "/api/v1/users/{id}/approver-scope",
    operationId: "setApproverScope",
    summary: "Limit an approver to some agents or services",
    description: "Widening a scope (or clearing it) needs step-up.",
    tags: ["approvals"],
    permission: "users:write",
    pathParams: { id: "The user's id (uuid)." },
    body: approverScopeInput,
    responses: { 200: { description: "The scope now.", schema: z.object({ scope }) } },
  },
];

const webhook = z.object({ id: z.string(), name: z.string(), host: z.string(), format: z.enum(["json", "slack"]), events: z.array(z.string()), enabled: z.boolean(), createdAt: dateTime, refused: z.string().nullable().meta({ description: "Why deliveries to it are refused now (its address outside the allowed networks, or its latest delivery refused), or null." }) });
const delivery = z.object({
  id: z.string(),
  webhookId: z.string(),
  webhook: z.string(),
  approvalId: z.string(),
  event: z.string(),
  status: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number().int(),
  nextAttemptAt: dateTime.nullable(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: dateTime,
  deliveredAt: dateTime.nullable(),
});

export const webhookOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/webhooks",
    operationId: "listWebhooks",
    summary: "Approval webhooks (URLs shown by host only)",
    tags: ["approvals"],
    permission: "settings:write",
    responses: { 200: { description: "Webhooks.", schema: z.object({ webhooks: z.array(webhook) }) } },
  },
  {
    method: "post",
    path: "/api/v1/webhooks",
    operationId: "createWebhook",
    summary: "Add an approval webhook; its signing secret is returned this once",
    description:
      "Each delivery is a POST signed with `Bulkhead-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`, retried with backoff until a 2xx. `slack` sends a Slack incoming-webhook message with a link to the card; deciding always needs sign-in. Needs step-up.",
    tags: ["approvals"],
    permission: "settings:write",
    body: createWebhookInput,
    responses: { 201: { description: "The webhook and its secret.", schema: z.object({ webhook: z.object({ id: z.string(), name: z.string(), signingSecret: z.string().meta({ description: "Shown this once; only its HMAC use proves it afterwards." }) }) }) } },
  },
  {
    method: "delete",
    path: "/api/v1/webhooks/{id}",
    operationId: "deleteWebhook",
    summary: "Remove an approval webhook (and its delivery history)",
    tags: ["approvals"],
    permission: "settings:write",
    pathParams: { id: "The webhook's id (uuid)." },
    responses: { 200: { description: "Removed.", schema: z.object({ deleted: z.boolean() }) } },
  },
  {
    method: "get",
    path: "/api/v1/webhooks/deliveries",
    operationId: "listWebhookDeliveries",
    summary: "Recent webhook deliveries: attempts, last answer, next retry",
    tags: ["approvals"],
    permission: "settings:write",
    query: z.object({ webhook: z.uuid().optional(), limit: z.number().int().min(1).max(500).optional() }),
    responses: { 200: { description: "Deliveries, newest first.", schema: z.object({ deliveries: z.array(delivery) }) } },
  },
];
