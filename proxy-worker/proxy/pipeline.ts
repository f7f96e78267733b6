import { randomUUID } from "node:crypto";
import { isTokenError } from "@/lib/identity/errors";
import { NO_SCOPE } from "@/lib/identity/scope";
import { decide, type Decision } from "@/lib/policy/decide";
import { canonicalizeRequest, canonicalUrl } from "@/lib/semantics/canonical";
import { classify } from "@/lib/semantics/classify";
import { resolveEnvironment } from "@/lib/semantics/inventory";
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { CanonicalRequest, SemanticAction } from "@/lib/semantics/types";
import { GRANT_HEADER, heldAnswer, isStatusRequest, statusAnswer, statusRequestId, wantsAsync, type HoldStatus } from "../approvals/async-hold";
import { compactActions } from "../audit/compact";
import { AuditUnavailableError } from "../audit/errors";
import type { AuthenticatedTask, TokenVerifier } from "../identity/token-verifier";
import type { ConnectionRegistry } from "./connections";
import type { EnforcementState } from "./enforcement-state";
import type { CheckedDestination } from "./forwarder";
import { ProxyRefusal } from "./errors";
import type { ClientLimits } from "./limits";
import { refusalEventType, type RefusalAudit } from "./refusal-audit";
import { checkScope } from "./scope-gate";
import type { AuditSink, DecisionEvent, ForwardPlan, ReceivedRequest } from "./types";

/** Holds a request for a human; resolves with the approval's outcome. */
export interface HoldGate {
  hold(input: { auth: AuthenticatedTask; request: CanonicalRequest; actions: SemanticAction[]; reason: string; eventId: string }): Promise<
    | { outcome: "approved"; approvalId: string; decidedBy: string | null }
    | { outcome: "denied" | "expired" | "cancelled"; approvalId: string; reason: string }
    | { outcome: "limited"; approvalId: null; reason: string }
  >;
  /** 202-and-poll (see approvals/async-hold.ts): record the hold without waiting on it. */
  open?(input: Parameters<HoldGate["hold"]>[0]): Promise<{ outcome: "opened"; approvalId: string; expiresAt: Date } | { outcome: "limited"; approvalId: null; reason: string }>;
  status?(taskId: string, approvalId: string): Promise<HoldStatus | null>;
  redeem?(input: { auth: AuthenticatedTask; request: CanonicalRequest; grant: string }): ReturnType<HoldGate["hold"]>;
}

/** Checks where a request would go after DNS; throws a ProxyRefusal for forbidden destinations. */
export interface DestinationChecker {
  check(request: CanonicalRequest, descriptor: ServiceDescriptor | null): Promise<CheckedDestination>;
}

export interface PipelineDeps {
  view: () => EnforcementState | null;
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
  /** Stage timings (seconds) for metrics. */
  observe?: (stage: string, seconds: number) => void;
  onDecision?: (outcome: string, effect: string | null) => void;
}

/** Headers whose duplicates change meaning; a request carrying two is ambiguous. */
const SINGLE = new Set(["host", "content-length", "content-type", "transfer-encoding", "authorization", "proxy-authorization"]);

function duplicateHeader(raw: readonly string[]): string | null {
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] ?? "").toLowerCase();
    if (!SINGLE.has(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return null;
}

/** What an audit event takes from a decision: the policy's, or layer 1's when the scope refused first. */
type Recorded = Pick<Decision, "effect" | "reason" | "ruleId">;

const since = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * The decision path of the proxy, one request at a time: identify, authenticate, parse and
 * canonicalise once, classify, decide, hold if needed, and record the decision durably before
 * anything is forwarded. Returns the plan to forward, or throws a ProxyRefusal (already audited).
 */
export class Pipeline {
  constructor(private readonly deps: PipelineDeps) {}

  async evaluate(incoming: ReceivedRequest): Promise<ForwardPlan> {
    const startedAt = process.hrtime.bigint();
    const eventId = randomUUID();
    const base = { eventId, listener: incoming.listener, client: incoming.clientAddress, method: incoming.method.slice(0, 32), url: incoming.url.slice(0, 2048) };
    const view = this.deps.view();
    if (!view) {
      throw await this.refuse(new ProxyRefusal("unavailable", "policy_unavailable", "the proxy has no policy snapshot yet"), base, null);
    }

    // 1-2. Identify and authenticate.
    let t = process.hrtime.bigint();
    const auth = await this.authenticate(incoming, view).catch(async (refusal: ProxyRefusal) => {
      throw await this.refuse(refusal, base, null);
    });
    const limited = this.deps.limits?.admit(auth, incoming.connection);
    if (limited) throw await this.refuse(limited, base, auth);
    this.deps.observe?.("authenticate", since(t));
    if (incoming.connection) this.deps.connections?.register(incoming.connection, { taskId: auth.taskId, agentId: auth.agentId, jti: auth.jti });

    // The body only now: an unauthenticated client never makes the worker read or buffer one.
    let body = incoming.body;
    if (incoming.readBody) {
      const read = incoming.readBody;
      body = await read().catch(async (error: unknown) => {
        throw await this.refuse(error instanceof ProxyRefusal ? error : new ProxyRefusal("malformed", "body_error", "the request body could not be read"), base, auth);
      });
    }

    // 3. Parse and canonicalise once: this object is what is decided and what is forwarded.
    t = process.hrtime.bigint();
    const dup = duplicateHeader(incoming.rawHeaders);
    if (dup) throw await this.refuse(new ProxyRefusal("malformed", "duplicate_header", `duplicate ${dup} header`), base, auth);
    const canonical = canonicalizeRequest({ method: incoming.method, url: incoming.url, headers: incoming.headers, body });
    if (!canonical.ok) throw await this.refuse(new ProxyRefusal("malformed", canonical.code, canonical.reason), base, auth);
    const request = canonical.request;
    if (incoming.tunnelAuthority && (request.host !== incoming.tunnelAuthority.host || request.port !== incoming.tunnelAuthority.port)) {
      throw await this.refuse(
        new ProxyRefusal("malformed", "authority_mismatch", `request is for ${request.host}:${request.port} but the tunnel was authorised for ${incoming.tunnelAuthority.host}:${incoming.tunnelAuthority.port}`),
        base,
        auth,
      );
    }

    // A status poll of a held request (202-and-poll) is answered by Bulkhead itself, never forwarded.
    if (isStatusRequest(request)) throw await this.holdStatus(auth, request, base);

    // 4. Classify into semantic actions.
    const classification = classify(request, view.registry, view.inventory);
    this.deps.observe?.("classify", since(t));
    if (!classification.ok) throw await this.refuse(new ProxyRefusal("malformed", classification.code, classification.reason), base, auth);
    const match = view.registry.match(request.host, request.port, request.scheme);
    const descriptor: ServiceDescriptor | null = match.kind === "service" ? match.descriptor : null;

    // 4b. Layer 1 before any policy: every action must lie inside the scope the request carries.
    const outside = checkScope(auth.scope, classification.actions);
    if (outside) {
      const data = { ...base, url: canonicalUrl(request), service: classification.service, actions: compactActions(classification.actions, request), layer: "identity", scope: auth.scope.text };
      throw await this.refuse(outside.refusal, data, auth, outside.verdict);
    }

    // 5. Decide, purely, over the task's policy.
    t = process.hrtime.bigint();
    const compiled = view.policyFor(auth.task);
    if ("error" in compiled) {
      throw await this.refuse(new ProxyRefusal("denied", "policy_invalid", `the task's policy cannot be used: ${compiled.error}`), base, auth);
    }
    const decision = decide(compiled.policy, classification.actions, Date.now());
    this.deps.observe?.("decide", since(t));
    const detail = { ...base, url: canonicalUrl(request), service: classification.service, actions: compactActions(classification.actions, request), mode: decision.mode, wouldBe: decision.wouldBe ?? null };

    if (decision.decision === "deny") {
      throw await this.refuse(new ProxyRefusal("denied", "policy_deny", decision.reason, { ruleId: decision.ruleId, effect: decision.effect }), detail, auth, decision);
    }

    // 7 (checks first). Where would it go? A forbidden destination is refused before any human is asked.
    t = process.hrtime.bigint();
    let destination: CheckedDestination;
    try {
      destination = await this.deps.destinations.check(request, descriptor);
    } catch (error) {
      const refusal = error instanceof ProxyRefusal ? error : new ProxyRefusal("bad_gateway", "destination_error", "the destination could not be checked");
      throw await this.refuse(refusal, detail, auth, decision);
    }
    this.deps.observe?.("destination", since(t));

    // 6. Hold: a human decides; the approval is bound to this exact request.
    if (decision.decision === "hold") {
      const grant = request.headers[GRANT_HEADER];
      const held = { auth, request, actions: classification.actions, reason: decision.reason, eventId };
      if (grant === undefined) await this.record("proxy.hold", "hold", detail, auth, decision);
      if (grant === undefined && wantsAsync(request.headers) && this.deps.holds.open) {
        const opened = await this.deps.holds.open(held);
        if (opened.outcome === "limited") throw await this.refuse(new ProxyRefusal("rate_limited", "hold_limit", opened.reason), detail, auth, decision);
        const answer = heldAnswer(opened.approvalId, opened.expiresAt);
        answer.context = { ...detail, taskId: auth.taskId, agentId: auth.agentId, actions: undefined, approvalId: opened.approvalId };
        throw answer;
      }
      const result =
        grant !== undefined && this.deps.holds.redeem ? await this.deps.holds.redeem({ auth, request, grant }) : await this.deps.holds.hold(held);
      if (result.outcome === "limited") {
        // Too many of this task's requests already wait: refused without asking anyone, so a flood never buries other tasks.
        throw await this.refuse(new ProxyRefusal("rate_limited", "hold_limit", result.reason), detail, auth, decision);
      }
      if (result.outcome !== "approved") {
        const code = result.outcome === "expired" ? "approval_timeout" : result.outcome === "cancelled" ? "approval_cancelled" : "approval_denied";
        throw await this.refuse(new ProxyRefusal("denied", code, result.reason, { approvalId: result.approvalId }), { ...detail, approvalId: result.approvalId }, auth, decision);
      }
      await this.record("proxy.approved", "allow", { ...detail, approvalId: result.approvalId, approvedBy: result.decidedBy }, auth, decision);
      await this.confirm(incoming, auth, detail, decision, result.approvalId);
    } else {
      // 8 (before 7). The decision is durable before anything leaves.
      await this.record("proxy.decision", "allow", detail, auth, decision);
      await this.confirm(incoming, auth, detail, decision);
    }
    const why = { reason: decision.reason, ruleId: decision.ruleId, mode: decision.mode, wouldBe: decision.wouldBe ?? null };
    return { auth, request, descriptor, destination, actions: classification.actions, effect: decision.effect, decision: decision.decision, why, eventId, startedAt };
  }

  /**
   * A CONNECT to be intercepted: everything that can be decided before `200 Connection
   * Established` is decided here (identity, budgets, destination address, the service's ports
   * and Bulkhead's own ports), so a tunnel that would only ever be refused is never opened. Each
   * request inside it is then judged on its own. Refusals are audited like any other.
   */
  async admitConnect(
    incoming: Pick<ReceivedRequest, "listener" | "clientAddress" | "identity" | "connection">,
    target: { host: string; port: number; scheme: "http" | "https" },
    descriptor: ServiceDescriptor | null,
  ): Promise<{ auth: AuthenticatedTask; destination: CheckedDestination; eventId: string }> {
    const eventId = randomUUID();
    const base = { eventId, listener: incoming.listener, client: incoming.clientAddress, method: "CONNECT", url: `${target.host}:${target.port}` };
    const view = this.deps.view();
    if (!view) throw await this.refuse(new ProxyRefusal("unavailable", "policy_unavailable", "the proxy has no policy snapshot yet"), base, null);
    const auth = await this.authenticate({ ...incoming, method: "CONNECT", url: "", headers: {}, rawHeaders: [], body: null }, view).catch(async (refusal: ProxyRefusal) => {
      throw await this.refuse(refusal, base, null);
    });
    const limited = this.deps.limits?.admit(auth, incoming.connection);
    if (limited) throw await this.refuse(limited, base, auth);
    const request = { method: "CONNECT", scheme: target.scheme, host: target.host, port: target.port, path: "/", query: "", headers: {} };
    try {
      const destination = await this.deps.destinations.check(request, descriptor);
      return { auth, destination, eventId };
    } catch (error) {
      throw await this.refuse(error instanceof ProxyRefusal ? error : new ProxyRefusal("bad_gateway", "destination_error", "the destination could not be checked"), base, auth);
    }
  }

  /**
   * A CONNECT to a passthrough (host-only) service: the tunnel's contents will not be inspected,
   * so it is one action, `tunnel`, with the highest effect, on the service's environment. A rule
   * must allow irreversible effects on that service (with waive_approval, or it is held).
   */
  async evaluateTunnel(incoming: Omit<ReceivedRequest, "method" | "url" | "headers" | "rawHeaders" | "body">, host: string, port: number): Promise<ForwardPlan> {
    const startedAt = process.hrtime.bigint();
    const eventId = randomUUID();
    const base = { eventId, listener: incoming.listener, client: incoming.clientAddress, method: "CONNECT", url: `${host}:${port}` };
    const view = this.deps.view();
    if (!view) throw await this.refuse(new ProxyRefusal("unavailable", "policy_unavailable", "the proxy has no policy snapshot yet"), base, null);
    const auth = await this.authenticate({ ...incoming, method: "CONNECT", url: "", headers: {}, rawHeaders: [], body: null }, view).catch(async (refusal: ProxyRefusal) => {
      throw await this.refuse(refusal, base, null);
    });
    const limited = this.deps.limits?.admit(auth, incoming.connection);
    if (limited) throw await this.refuse(limited, base, auth);
    const match = view.registry.match(host, port, "https");
    if (match.kind !== "service" || match.descriptor.proxy.tls !== "passthrough") {
      throw await this.refuse(new ProxyRefusal("denied", "tunnel_not_allowed", `${host}:${port} is not a passthrough service`), base, auth);
    }
    const descriptor = match.descriptor;
    const action: SemanticAction = {
      service: descriptor.id,
      environment: resolveEnvironment(view.inventory, { service: descriptor.id, host, keys: [host], fixed: descriptor.environment }),
      resource: host,
      operation: "tunnel",
      effect: "irreversible",
      detail: { note: "host-only service: the tunnel's contents are not inspected" },
    };
    // Layer 1 judges a tunnel like any other action (irreversible, so only a scope allowing that reaches it).
    const outside = checkScope(auth.scope, [action]);
    if (outside) throw await this.refuse(outside.refusal, { ...base, service: descriptor.id, actions: [action], hostOnly: true, layer: "identity", scope: auth.scope.text }, auth, outside.verdict);
    const compiled = view.policyFor(auth.task);
    if ("error" in compiled) throw await this.refuse(new ProxyRefusal("denied", "policy_invalid", compiled.error), base, auth);
    const decision = decide(compiled.policy, [action], Date.now());
    const detail = { ...base, service: descriptor.id, actions: [action], mode: decision.mode, hostOnly: true };
    if (decision.decision !== "allow") {
      // Tunnels are not held: an approval cannot be bound to contents nobody will see.
      throw await this.refuse(new ProxyRefusal("denied", "policy_deny", `host-only service, contents not inspected: ${decision.reason}`, { ruleId: decision.ruleId }), detail, auth, decision);
    }
    const request = { method: "CONNECT", scheme: "https" as const, host, port, path: "/", query: "", headers: {} };
    let destination: CheckedDestination;
    try {
      destination = await this.deps.destinations.check(request, descriptor);
    } catch (error) {
      throw await this.refuse(error instanceof ProxyRefusal ? error : new ProxyRefusal("bad_gateway", "destination_error", "the destination could not be checked"), detail, auth, decision);
    }
    await this.record("proxy.decision", "allow", detail, auth, decision);
    await this.confirm({ ...incoming, method: "CONNECT", url: "", headers: {}, rawHeaders: [], body: null }, auth, detail, decision);
    const why = { reason: decision.reason, ruleId: decision.ruleId, mode: decision.mode, wouldBe: decision.wouldBe ?? null };
    return { auth, request, descriptor, destination, actions: [action], effect: "irreversible", decision: "allow", why, eventId, startedAt };
  }

  /** Bulkhead's answer to `GET http://bulkhead.hold/<id>`: only the task's own holds, only GET. */
  private async holdStatus(auth: AuthenticatedTask, request: CanonicalRequest, base: Record<string, unknown>): Promise<ProxyRefusal> {
    const id = statusRequestId(request);
    if (request.method !== "GET" || !id) return this.refuse(new ProxyRefusal("malformed", "hold_status_malformed", "poll a held request with GET http://bulkhead.hold/<approval id>"), base, auth);
    const status = this.deps.holds.status ? await this.deps.holds.status(auth.taskId, id) : null;
    if (!status) return this.refuse(new ProxyRefusal("denied", "approval_unknown", "this task has no held request with that id", { approvalId: id }), base, auth);
    const answer = statusAnswer(id, status);
    answer.context = { ...base, taskId: auth.taskId, agentId: auth.agentId, approvalId: id };
    return answer;
  }

  /**
   * The last step before a plan is handed over for forwarding: the request's authority is
   * checked again exactly as a new request's would be (task active and unexpired in the current
   * snapshot, token valid and not revoked, agent not suspended, the sandbox still bound to the
   * task). A held request may have waited minutes for its approval, and a kill switch may have
   * been pulled while any request was being decided; either way nothing is forwarded.
   */
  private async confirm(incoming: ReceivedRequest, auth: AuthenticatedTask, detail: Record<string, unknown>, decision: Decision, approvalId?: string): Promise<void> {
    const view = this.deps.view();
    let refusal: ProxyRefusal | null = null;
    if (!view) refusal = new ProxyRefusal("unavailable", "policy_unavailable", "the proxy has no policy snapshot");
    else {
      try {
        const again = await this.authenticate(incoming, view);
        if (again.taskId !== auth.taskId || again.agentId !== auth.agentId || again.jti !== auth.jti) {
          refusal = new ProxyRefusal("identity", "identity_changed", "the request's identity changed while it was being decided");
        }
      } catch (error) {
        refusal = error instanceof ProxyRefusal ? error : new ProxyRefusal("identity", "token_unverifiable", "task token could not be verified");
      }
    }
    if (!refusal) return;
    if (approvalId) refusal = new ProxyRefusal("denied", "approval_cancelled", `the approval was cancelled because its authority is gone (${refusal.code})`, { approvalId });
    // Its own event: the allow before it was recorded, and stays true of the decision.
    throw await this.refuse(refusal, { ...detail, eventId: `${String(detail.eventId)}:revoked`, decisionEventId: detail.eventId, ...(approvalId ? { approvalId } : {}) }, auth, decision);
  }

  private async authenticate(incoming: ReceivedRequest, view: EnforcementState): Promise<AuthenticatedTask> {
    let token: string | null;
    if (incoming.identity.kind === "token") {
      token = incoming.identity.token;
      if (!token) throw new ProxyRefusal("identity", "token_missing", "a task token is required in Proxy-Authorization");
    } else {
      const taskId = view.snapshot.sandboxes.get(incoming.identity.sourceAddress);
      if (!taskId) throw new ProxyRefusal("identity", "sandbox_unknown", "this address belongs to no sandbox");
      const task = view.snapshot.tasks.get(taskId);
      if (!task) throw new ProxyRefusal("identity", "task_revoked", "the sandbox's task is not active");
      // Checked on every request: the snapshot is only as fresh as its last reload.
      if (task.expiresAt.getTime() <= Date.now()) throw new ProxyRefusal("identity", "task_expired", "the sandbox's task has expired");
      // The sandbox binding carries its task's scope (an unreadable one allows nothing).
      return { task, agentId: task.agentId, taskId: task.id, jti: null, via: "sandbox", token: null, scope: task.scope ?? NO_SCOPE };
    }
    let auth: AuthenticatedTask;
    try {
      auth = await this.deps.tokens.authenticate(token);
    } catch (error) {
      if (isTokenError(error)) throw new ProxyRefusal("identity", `token_${error.reason}`, `task token refused: ${error.reason}`);
      // A verifier fault must fail closed.
      throw new ProxyRefusal("identity", "token_unverifiable", "task token could not be verified");
    }
    // From a sandbox's address, only that sandbox's own task may act: a token is bound to it.
    const sandboxTask = view.snapshot.sandboxes.get(incoming.clientAddress.replace(/^::ffff:/, ""));
    if (sandboxTask !== undefined && sandboxTask !== auth.taskId) {
      throw new ProxyRefusal("identity", "token_sandbox_mismatch", "this token belongs to another task than the sandbox it was presented from");
    }
    return auth;
  }

  private async record(type: string, outcome: string, data: Record<string, unknown>, auth: AuthenticatedTask | null, decision?: Recorded, reason?: string): Promise<void> {
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
  private async refuse(refusal: ProxyRefusal, data: Record<string, unknown>, auth: AuthenticatedTask | null, decision?: Recorded & Partial<Pick<Decision, "mode">>): Promise<ProxyRefusal> {
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
