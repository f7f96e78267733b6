import type { Duplex } from "node:stream";
import type { Verdict } from "@/lib/policy/decide";
import type { CanonicalRequest, Effect, SemanticAction } from "@/lib/semantics/types";
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { AuthenticatedTask } from "../identity/token-verifier";
import type { EnforcementState } from "./enforcement-state";
import type { CheckedDestination } from "./forwarder";

export type ListenerKind = "explicit" | "intercepted" | "transparent";

/** One request as a listener received it, before anything is trusted. */
export interface ReceivedRequest {
  listener: ListenerKind;
  clientAddress: string;
  /** How the agent identified itself: a task token, or (transparent) its sandbox's source address. */
  /** `missing`: why there is no token, said in the 407 (credentials.ts, missingTokenReason). */
  identity: { kind: "token"; token: string | null; missing?: string } | { kind: "sandbox"; sourceAddress: string };
  method: string;
  /** Absolute URL: the request target (explicit), or built from the checked authority (intercepted). */
  url: string;
  /** Header values joined per name (names lower-case). */
  headers: Record<string, string>;
  /** As received, to detect duplicates of single-valued headers. */
  rawHeaders: readonly string[];
  body: Buffer | null;
  /** Reads the body; called only once the client is authenticated (then it replaces `body`). */
  readBody?: () => Promise<Buffer | null>;
  /**
   * The client connection the request came on: what per-task connection limits count, and what
   * is registered under its task, agent and jti once authenticated (so a kill switch closes it).
   */
  connection?: Duplex;
  /** Set when the request arrived inside an intercepted tunnel: the authority that was authorised. */
  tunnelAuthority?: { host: string; port: number };
}

/** An audit record of one decision (the stable event shape of lib/audit/record.ts). */
export interface DecisionEvent {
  type: string;
  actorType: "agent" | "system";
  actorId: string | null;
  agentId: string | null;
  taskId: string | null;
  outcome: string;
  effect: Effect | null;
  reason: string;
  ruleId: string | null;
  data: Record<string, unknown>;
}

/**
 * Where decision events go: resolves once the event is durable (with whatever the sink says of
 * it, which the request path does not read); rejects when it cannot be.
 * `deferred`: nothing waits for this event (a request's completion), so the sink may write it
 * with the next one instead of on its own (AuditWriter.record).
 */
export interface AuditSink {
  record(event: DecisionEvent, options?: { deferred?: boolean }): Promise<unknown>;
}

/** A request that may be forwarded: exactly what was evaluated, plus where and as whom. */
export interface ForwardPlan {
  auth: AuthenticatedTask;
  /** The enforcement state the request's authority was last confirmed in: its credentials are injected. */
  state: EnforcementState;
  request: CanonicalRequest;
  /** `request` as a canonical URL (computed once, for audit events and the log line). */
  url: string;
  descriptor: ServiceDescriptor | null;
  /** How the request was read (pipeline.ts `Classified`): an MCP answer's session is bound to the task. */
  protocol: "rest" | "graphql" | "sql-http" | "mcp" | null;
  destination: CheckedDestination;
  actions: SemanticAction[];
  effect: Effect;
  decision: Verdict;
  /** The approval that released a held request (consumed), or null. */
  approvalId: string | null;
  /** Why (for the decision log line): the rule, its reason and the policy mode. */
  why?: { reason: string; ruleId: string | null; mode: string; wouldBe: string | null };
  eventId: string;
  startedAt: bigint;
}
