/**
 * What the request path's stages share: their dependencies, who is asking (identify, and the
 * confirmation of it just before forwarding), and how decisions and refusals are audited.
 */
import type { McpSessions } from "./mcp-sessions";
import { isTokenError, tokenRefusalReason } from "@/lib/identity/errors";
import { NO_SCOPE } from "@/lib/identity/scope";
import { decide, type Decision } from "@/lib/policy/decide";
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import { classifyMatched } from "@/lib/semantics/classify";
import type { CanonicalRequest, SemanticAction } from "@/lib/semantics/types";
import { actionsChanged } from "../approvals/actions-changed";
import type { HoldStatus } from "../approvals/async-hold";
import { compactActions } from "../audit/compact";
import { AuditUnavailableError } from "../audit/errors";
import type { AuthenticatedTask, TokenVerifier } from "../identity/token-verifier";
import type { ConnectionRegistry } from "./connections";
import type { EnforcementState } from "./enforcement-state";
import type { CheckedDestination } from "./forwarder";
import { ProxyRefusal } from "./errors";
import type { ClientLimits } from "./limits";
import { refusalEventType, type RefusalAudit } from "./refusal-audit";
import type { AuditSink, DecisionEvent, ReceivedRequest } from "./types";

/** Holds a request for a human; resolves with the approval's outcome. */
export interface HoldGate {
  /** `abandoned` aborts when nobody waits for the answer any more (the client's connection closed): the hold is cancelled. */
  hold(input: { auth: AuthenticatedTask; request: CanonicalRequest; actions: SemanticAction[]; reason: string; eventId: string; abandoned?: AbortSignal }): Promise<
    | { outcome: "approved"; approvalId: string; decidedBy: string | null }
    | { outcome: "denied" | "expired" | "cancelled"; approvalId: string; reason: string; used?: true }
    | { outcome: "limited"; approvalId: null; reason: string }
  >;
  /** 202-and-poll (see approvals/async-hold.ts): record the hold without waiting on it. */
  open?(input: Parameters<HoldGate["hold"]>[0]): Promise<{ outcome: "opened"; approvalId: string; expiresAt: Date } | { outcome: "limited"; approvalId: null; reason: string }>;
  status?(taskId: string, approvalId: string): Promise<HoldStatus | null>;
  /** `actions`: what the retry is classified into now (a grant releases only the actions it was given for). */
  redeem?(input: { auth: AuthenticatedTask; request: CanonicalRequest; grant: string; actions?: SemanticAction[] }): ReturnType<HoldGate["hold"]>;
}

/** Checks where a request would go after DNS; throws a ProxyRefusal for forbidden destinations. */
export interface DestinationChecker {
  check(request: CanonicalRequest, descriptor: ServiceDescriptor | null): Promise<CheckedDestination>;
  /** Only what needs no DNS answer (a held request's name is looked up once a person approved it); unset: `check` in full. */
  precheck?(request: CanonicalRequest, descriptor: ServiceDescriptor | null): Promise<void>;
}

export interface PipelineDeps {
  /** The enforcement state in force (swapped whole on every policy version). */
  state: () => EnforcementState | null;
  destinations: DestinationChecker;
  tokens: TokenVerifier;
  audit: AuditSink;
  holds: HoldGate;
  /** Open client connections by task, agent and jti, so that a kill switch can close them. */
  connections?: ConnectionRegistry;
  /** Per-task and per-agent budgets, checked right after authentication. */
  limits?: ClientLimits;
  /** Where refusals anyone can cause in bulk are audited (before authentication, rate limits). */
  refusals?: RefusalAudit;
  /**
   * Whether the snapshot in force has been stale (PostgreSQL not answering) for longer than the
   * worker enforces one: every request is then refused. Unset: never.
   */
  policyTooStale?: () => boolean;
  /** Which task opened each MCP session (mcp-sessions.ts); unset: sessions are not checked. */
  mcpSessions?: McpSessions;
  /** Stage timings (seconds) for metrics. */
  observe?: (stage: string, seconds: number) => void;
  onDecision?: (outcome: string, effect: string | null) => void;
}

/** What an audit event takes from a decision: the policy's, or layer 1's when the scope refused first. */
export type Recorded = Pick<Decision, "effect" | "reason" | "ruleId">;

export class PipelineAudit {
  constructor(protected readonly deps: PipelineDeps) {}

  /**
   * The last step before a plan is handed over for forwarding: the request's authority is
   * checked again exactly as a new request's would be (task active and unexpired in the current
   * snapshot, token valid and not revoked, agent not suspended, the sandbox still bound to the
   * task). A held request may have waited minutes for its approval, and a kill switch may have
   * been pulled while any request was being decided; either way nothing is forwarded.
   */
  protected async confirm(
    incoming: ReceivedRequest,
    auth: AuthenticatedTask,
    detail: Record<string, unknown>,
    decision: Decision,
    approvalId?: string,
    actions?: SemanticAction[],
    judged?: { request: CanonicalRequest; state: EnforcementState; hostOnly?: boolean },
  ): Promise<EnforcementState> {
    const state = this.deps.state();
    let refusal: ProxyRefusal | null = null;
    let again: AuthenticatedTask | null = null;
    if (!state) refusal = new ProxyRefusal("unavailable", "policy_unavailable", "the proxy has no policy snapshot");
    else {
      try {
        again = await this.identify(incoming, state);
        if (again.taskId !== auth.taskId || again.agentId !== auth.agentId || again.jti !== auth.jti) {
          refusal = new ProxyRefusal("identity", "identity_changed", "the request's identity changed while it was being decided");
        }
      } catch (error) {
        refusal = error instanceof ProxyRefusal ? error : new ProxyRefusal("identity", "token_unverifiable", "task token could not be verified");
      }
    }
    // A request is forwarded under the policy, services and inventory in force now, not those it
    // began under: a held one may have waited minutes, and any other may have taken as long as a
    // client takes to send its body (the state is read when the request begins). One narrowed
    // meanwhile wins over the approval (as a 202-and-poll retry is judged afresh before its grant
    // is looked at), and over the decision made before it.
    if (!refusal && state && again && actions) {
      const reclassify = judged && !judged.hostOnly && (approvalId !== undefined || state.registry !== judged.state.registry || state.inventory !== judged.state.inventory);
      if (reclassify) await this.stillTheSameActions(state, auth, detail, decision, approvalId, actions, judged.request);
      await this.stillPermitted(state, auth, again, detail, decision, approvalId, actions);
    }
    if (!refusal && state) return state;
    refusal ??= new ProxyRefusal("unavailable", "policy_unavailable", "the proxy has no policy snapshot");
    if (approvalId) refusal = new ProxyRefusal("denied", "approval_cancelled", `the approval was cancelled because its authority is gone (${refusal.code})`, { approvalId });
    // Its own event: the allow before it was recorded, and stays true of the decision.
    throw await this.refuse(refusal, { ...detail, eventId: `${String(detail.eventId)}:revoked`, decisionEventId: detail.eventId, ...(approvalId ? { approvalId } : {}) }, auth, decision);
  }

  /**
   * Refuses (actions_changed) an approved request that the service registry and environment
   * inventory in force now classify into other actions than those it was held with: the person
   * approved what the card said (delete a staging volume), and the inventory may have moved that
   * volume to production meanwhile. Neither change touches the task's policy version, so the
   * policy check below would not have looked again, and the request was released as staging.
   */
  private async stillTheSameActions(
    state: EnforcementState,
    auth: AuthenticatedTask,
    detail: Record<string, unknown>,
    decision: Decision,
    approvalId: string | undefined,
    actions: SemanticAction[],
    request: CanonicalRequest,
  ): Promise<void> {
    const now = classifyMatched(request, state.registry.match(request.host, request.port, request.scheme), state.inventory);
    const changed = now.ok ? actionsChanged(actions, now.actions) : `it can no longer be classified (${now.reason})`;
    if (!changed) return;
    const why = approvalId
      ? `what the request does was judged differently while it was held (the service registry or environment inventory changed): ${changed}; the approval was given for what it did before`
      : `what the request does was judged differently while it was being decided (the service registry or environment inventory changed): ${changed}`;
    const refusal = new ProxyRefusal("denied", "actions_changed", `${why}, so nothing was forwarded; send it again to have it judged afresh`, approvalId ? { approvalId } : {});
    const data = { ...detail, eventId: `${String(detail.eventId)}:actions`, decisionEventId: detail.eventId, ...(approvalId ? { approvalId } : {}), ...(now.ok ? { actionsNow: compactActions(now.actions, request) } : {}) };
    throw await this.refuse(refusal, data, auth, decision);
  }

  /**
   * Refuses (policy_changed) a request that the task's policy, as it is now, no longer lets
   * through as decided: an approved one it denies, any other it denies or would hold for a person.
   */
  private async stillPermitted(
    state: EnforcementState,
    auth: AuthenticatedTask,
    again: AuthenticatedTask,
    detail: Record<string, unknown>,
    decision: Decision,
    approvalId: string | undefined,
    actions: SemanticAction[],
  ): Promise<void> {
    if (again.task.policyVersion === auth.task.policyVersion && again.task.policyYaml === auth.task.policyYaml) return;
    const compiled = state.policyFor(again.task);
    const now = "error" in compiled ? null : decide(compiled.policy, actions, Date.now());
    if (now && (now.decision === "allow" || (approvalId !== undefined && now.decision === "hold"))) return;
    const why = now ? now.reason : `the task's policy cannot be used: ${"error" in compiled ? compiled.error : ""}`;
    const what = approvalId ? "while the request was held and now denies it" : now?.decision === "hold" ? "while the request was being decided and now needs a person's approval for it (send it again)" : "while the request was being decided and now denies it";
    const refusal = new ProxyRefusal("denied", "policy_changed", `the task's policy changed ${what}: ${why}`, { ...(approvalId ? { approvalId } : {}), ...(now?.ruleId ? { ruleId: now.ruleId } : {}) });
    const versions = approvalId ? { approvalId, heldUnderPolicyVersion: auth.task.policyVersion } : { decidedUnderPolicyVersion: auth.task.policyVersion };
    throw await this.refuse(refusal, { ...detail, eventId: `${String(detail.eventId)}:policy`, decisionEventId: detail.eventId, ...versions, policyVersion: again.task.policyVersion }, auth, now ?? decision);
  }

  /** Who is asking: the token verified behind the cache, or the sandbox the source address belongs to. */
  protected async identify(incoming: ReceivedRequest, state: EnforcementState): Promise<AuthenticatedTask> {
    let token: string | null;
    if (incoming.identity.kind === "token") {
      token = incoming.identity.token;
      if (!token) throw new ProxyRefusal("identity", "token_missing", incoming.identity.missing ?? "a task token is required in Proxy-Authorization");
    } else {
      const taskId = state.snapshot.sandboxes.get(incoming.identity.sourceAddress);
      if (!taskId) throw new ProxyRefusal("identity", "sandbox_unknown", "this address belongs to no sandbox");
      const task = state.snapshot.tasks.get(taskId);
      if (!task) throw new ProxyRefusal("identity", "task_revoked", "the sandbox's task is not active");
      // Checked on every request: the snapshot is only as fresh as its last reload.
      if (task.expiresAt.getTime() <= Date.now()) throw new ProxyRefusal("identity", "task_expired", "the sandbox's task has expired");
      // And against the verifier's revocations, as a token is: this state's snapshot can be older
      // than what the verifier has taken (a load that failed after its revocations were applied),
      // and a sandbox of an ended task was then judged allowed, and its raw connections dialled.
      const revoked = this.deps.tokens.revoked({ taskId: task.id, agentId: task.agentId, jti: null });
      if (revoked) throw new ProxyRefusal("identity", revoked === "task_expired" ? "task_expired" : "task_revoked", `the sandbox's task may no longer act (${revoked})`);
      // The sandbox binding carries its task's scope (an unreadable one allows nothing).
      return { task, agentId: task.agentId, taskId: task.id, jti: null, via: "sandbox", token: null, scope: task.scope ?? NO_SCOPE };
    }
    let auth: AuthenticatedTask;
    try {
      auth = await this.deps.tokens.authenticate(token);
    } catch (error) {
      if (isTokenError(error)) throw new ProxyRefusal("identity", `token_${error.reason}`, tokenRefusalReason(error));
      // A verifier fault must fail closed.
      throw new ProxyRefusal("identity", "token_unverifiable", "task token could not be verified");
    }
    // From a sandbox's address, only that sandbox's own task may act: a token is bound to it. A
    // transparent listener's client is always a sandbox: with no address to check, no token counts.
    if (incoming.listener === "transparent" && !incoming.clientAddress) {
      throw new ProxyRefusal("identity", "token_sandbox_mismatch", "a token presented on a sandbox's connection whose address is unknown is not honoured");
    }
    const sandboxTask = state.snapshot.sandboxes.get(incoming.clientAddress.replace(/^::ffff:/, ""));
    if (sandboxTask !== undefined && sandboxTask !== auth.taskId) {
      throw new ProxyRefusal("identity", "token_sandbox_mismatch", "this token belongs to another task than the sandbox it was presented from");
    }
    return auth;
  }

  protected async record(type: string, outcome: string, data: Record<string, unknown>, auth: AuthenticatedTask | null, decision?: Recorded, reason?: string): Promise<void> {
    const event: DecisionEvent = {
      type,
      actorType: auth ? "agent" : "system",
      actorId: auth?.agentId ?? null,
      agentId: auth?.agentId ?? null,
      taskId: auth?.taskId ?? null,
      outcome,
      effect: decision?.effect ?? null,
      reason: (reason ?? decision?.reason ?? "").slice(0, 2000),
      ruleId: decision?.ruleId ?? null,
      data,
    };
    try {
      await this.deps.audit.record(event);
    } catch (error) {
      if (error instanceof AuditUnavailableError && error.reason === "backlog") {
        throw new ProxyRefusal("unavailable", "audit_backlog", "the audit log is too far behind (PostgreSQL away or slow), so new requests are refused");
      }
      throw new ProxyRefusal("unavailable", "audit_unavailable", "the decision could not be recorded, so the request was not forwarded");
    }
    this.deps.onDecision?.(outcome, event.effect);
  }

  /**
   * Records a refusal (best effort for the audit itself) and returns it, carrying the event id
   * and what the decision log line needs. Refusals anyone can cause in bulk (before
   * authentication, or over a rate limit) go through the flood-aggregating recorder.
   */
  protected async refuse(refusal: ProxyRefusal, data: Record<string, unknown>, auth: AuthenticatedTask | null, decision?: Recorded & Partial<Pick<Decision, "mode">>): Promise<ProxyRefusal> {
    const actions = Array.isArray(data.actions) ? (data.actions as SemanticAction[]) : [];
    refusal.context = {
      ...data,
      taskId: auth?.taskId,
      agentId: auth?.agentId,
      operations: actions.map((a) => a.operation),
      resources: actions.map((a) => a.resource),
      effect: decision?.effect,
      ruleId: decision?.ruleId,
      mode: decision?.mode,
      actions: undefined,
    };
    if (this.deps.refusals && (!auth || refusal.kind === "rate_limited")) {
      const source = { data: { ...data, eventId: String(data.eventId), listener: String(data.listener), client: String(data.client) }, auth };
      return this.deps.refusals.record(refusal, source);
    }
    try {
      await this.record(refusalEventType(refusal), "deny", { ...data, code: refusal.code, kind: refusal.kind }, auth, decision, refusal.reason);
      refusal.auditEventId = String(data.eventId);
    } catch (error) {
      // Refusing is safe even when it cannot be recorded; say so in the response.
      if (error instanceof ProxyRefusal) refusal.extra.auditWarning = "this refusal could not be recorded";
    }
    return refusal;
  }
}
