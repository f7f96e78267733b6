import { z } from "zod";
import { auditFilterShape, auditPageInput } from "@/lib/audit/filter";
import type { OpenApiOperation } from "../registry";
import { dateTime, nullableDateTime } from "../schemas";

const action = z.object({ service: z.string(), environment: z.string(), resource: z.string(), operation: z.string(), effect: z.string() });
const event = z.object({
  seq: z.string().meta({ description: "Position in the hash chain; also the event's id in this API." }),
  id: z.string(),
  at: dateTime,
  type: z.string(),
  outcome: z.string().nullable(),
  effect: z.string().nullable(),
  reason: z.string().nullable().meta({ description: "May contain agent-controlled text." }),
  ruleId: z.string().nullable(),
  actor: z.object({ type: z.string(), id: z.string().nullable(), name: z.string().nullable().meta({ description: "User email, API key or agent name." }) }),
  agent: z.object({ id: z.string(), name: z.string().nullable() }).nullable(),
  task: z.object({ id: z.string(), purpose: z.string().nullable() }).nullable(),
  request: z.object({ method: z.string().nullable(), url: z.string().nullable(), service: z.string().nullable(), code: z.string().nullable() }).nullable(),
  actions: z.array(action).meta({ description: "Every semantic action the stored event holds, however many." }),
  actionsLeftOut: z.number().int().meta({ description: "Actions the request carried that the stored event does not hold (only a refusal's event can lack some); 0 when it holds them all." }),
  data: z.unknown(),
  chain: z.object({ prevHash: z.string().nullable(), hash: z.string().nullable() }),
});
const chain = z.object({
  state: z.enum(["verified", "broken", "empty", "pending", "error"]),
  checkedAt: nullableDateTime,
  verifiedThroughSeq: z.string().nullable(),
  lastHash: z.string().nullable(),
  broken: z.object({ firstBadSeq: z.string(), problem: z.string(), detail: z.string() }).nullable(),
  retained: z.object({ firstKeptSeq: z.string(), checkpointNumber: z.string(), archivedCheckpoints: z.number().int() }).nullable(),
  signaturesChecked: z.boolean(),
  verifying: z.boolean(),
  error: z.string().nullable(),
});
const filters = z.object(auditFilterShape);

export const auditOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/audit",
    operationId: "listAuditEvents",
    summary: "One page of the audit log, newest first, with the hash chain's status",
    description:
      "Keyset pagination over the chain's seq: pass `nextCursor` as `cursor` for older events, `prevCursor` as `after` for newer ones; pages never skip or repeat an event however many are written meanwhile. Filters combine with AND; comma-separated values of one filter combine with OR. Every call is itself recorded (`audit.viewed`). A page's query runs for at most 5 s (a search the indexes cannot narrow is then a 400 with `details.reason` `search_too_slow`), and at most two run at once per person or API key (one more: 429 with Retry-After).",
    tags: ["audit"],
    permission: "read",
    query: filters.extend(auditPageInput.shape),
    responses: {
      200: {
        description: "The page.",
        schema: z.object({
          events: z.array(event),
          nextCursor: z.string().nullable(),
          prevCursor: z.string().nullable(),
          filter: z.record(z.string(), z.unknown()),
          nothing: z.string().nullable().meta({ description: "Why the filter can match nothing (an unknown agent name or user email, or no event in the log of any requested type)." }),
          unmatchedTypes: z.array(z.string()).meta({ description: "A sentence for each requested `type` (or kind) that no event in the log has, with the types the log holds. Types are open-ended, so such a value is not refused." }),
          unmatchedOutcomes: z.array(z.string()).meta({ description: "A sentence for each requested `outcome` that no event in the log has. Outcomes are open-ended, so such a value is not refused." }),
          chain,
        }),
      },
    },
  },
  {
    method: "get",
    path: "/api/v1/audit/{seq}",
    operationId: "getAuditEvent",
    summary: "One audit event with its semantic actions and its place in the hash chain",
    tags: ["audit"],
    permission: "read",
    pathParams: { seq: "The event's seq." },
    responses: {
      200: {
        description: "The event (recorded as `audit.event_viewed`).",
        schema: z.object({
          event,
          chain: z.object({
            seq: z.string(),
            prevHash: z.string().nullable(),
            hash: z.string().nullable(),
            hashMatches: z.boolean(),
            linksToPrevious: z.boolean(),
            checkpoint: z
              .object({ id: z.string(), seq: z.string(), createdAt: dateTime, keyId: z.string(), matchesChain: z.boolean(), signatureValid: z.boolean().nullable() })
              .nullable(),
          }),
          neighbours: z.object({ older: z.string().nullable(), newer: z.string().nullable() }),
        }),
      },
    },
  },
  {
    method: "get",
    path: "/api/v1/audit/export",
    operationId: "exportAuditEvents",
    summary: "Export every matching audit event as CSV, JSON Lines or OCSF 1.3 JSON Lines (streamed)",
    description:
      "Events up to the newest one at the start (header `X-Bulkhead-Export-Through-Seq`), oldest first. A requested `type` that no event in the log has is named in the header `X-Bulkhead-Unmatched-Types` (types are open-ended, so it is not refused), a requested `outcome` likewise in `X-Bulkhead-Unmatched-Outcomes`. CSV is RFC 4180 with every cell neutralised against formula injection. Recorded as `audit.export_started` before the first byte and `audit.exported` (rows, completed or cancelled) at the end.",
    tags: ["audit"],
    permission: "read",
    query: filters.extend({ format: z.enum(["csv", "jsonl", "ocsf"]).optional().meta({ description: "Default csv." }) }),
    responses: { 200: { description: "text/csv or application/x-ndjson, as an attachment." } },
  },
  {
    method: "get",
    path: "/api/v1/audit/keys",
    operationId: "getAuditKeys",
    summary: "The public keys that verify audit checkpoints (also at /.well-known/bulkhead-audit-keys.json)",
    description: "Public: Ed25519 keys (raw base64url and JWK) of the checkpoint signer, of format-1 checkpoints and of master keys rotated away.",
    tags: ["audit"],
    permission: null,
    responses: {
      200: {
        description: "The keys.",
        schema: z.object({
          keys: z.array(z.object({ keyId: z.string(), publicKey: z.string(), alg: z.literal("EdDSA"), jwk: z.object({}).loose(), use: z.enum(["checkpoint", "checkpoint-legacy", "checkpoint-retired", "report", "report-retired"]) })),
        }),
      },
    },
  },
];
