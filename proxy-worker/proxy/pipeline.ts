import { randomUUID } from "node:crypto";
import { isTokenError } from "@/lib/identity/errors";
import { decide, type Decision } from "@/lib/policy/decide";
import { canonicalizeRequest, canonicalUrl } from "@/lib/semantics/canonical";
import { classify } from "@/lib/semantics/classify";
import { resolveEnvironment } from "@/lib/semantics/inventory";
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { CanonicalRequest, SemanticAction } from "@/lib/semantics/types";
import type { AuthenticatedTask, TokenVerifier } from "../identity/token-verifier";
import type { EnforcementView } from "./enforcement-view";
import type { CheckedDestination } from "./forwarder";
import { ProxyRefusal } from "./errors";
import type { AuditSink, DecisionEvent, ForwardPlan, IncomingAction } from "./types";

/** Holds a request for a human; resolves with the approval's outcome. */
export interface HoldGate {
  hold(input: { auth: AuthenticatedTask; request: CanonicalRequest; actions: SemanticAction[]; reason: string; eventId: string }): Promise<
    { outcome: "approved"; approvalId: string; decidedBy: string | null } | { outcome: "denied" | "expired"; approvalId: string; reason: string }
  >;
}

/** Checks where a request would go after DNS; throws a ProxyRefusal for forbidden destinations. */
export interface DestinationChecker {
  check(request: CanonicalRequest, descriptor: ServiceDescriptor | null): Promise<CheckedDestination>;
}

export interface PipelineDeps {
  view: () => EnforcementView | null;
  destinations: DestinationChecker;
  tokens: TokenVerifier;
  audit: AuditSink;
  holds: HoldGate;
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

const since = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * The decision path of the proxy, one request at a time: identify, authenticate, parse and
 * canonicalise once, classify, decide, hold if needed, and record the decision durably before
 * anything is forwarded. Returns the plan to forward, or throws a ProxyRefusal (already audited).
 */
export class Pipeline {
  constructor(private readonly deps: PipelineDeps) {}

  async evaluate(incoming: IncomingAction): Promise<ForwardPlan> {
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
    this.deps.observe?.("authenticate", since(t));

    // 3. Parse and canonicalise once: this object is what is decided and what is forwarded.
    t = process.hrtime.bigint();
    const dup = duplicateHeader(incoming.rawHeaders);
    if (dup) throw await this.refuse(new ProxyRefusal("malformed", "duplicate_header", `duplicate ${dup} header`), base, auth);
    const canonical = canonicalizeRequest({ method: incoming.method, url: incoming.url, headers: incoming.headers, body: incoming.body });
    if (!canonical.ok) throw await this.refuse(new ProxyRefusal("malformed", canonical.code, canonical.reason), base, auth);
    const request = canonical.request;
    if (incoming.tunnelAuthority && (request.host !== incoming.tunnelAuthority.host || request.port !== incoming.tunnelAuthority.port)) {
      throw await this.refuse(
        new ProxyRefusal("malformed", "authority_mismatch", `request is for ${request.host}:${request.port} but the tunnel was authorised for ${incoming.tunnelAuthority.host}:${incoming.tunnelAuthority.port}`),
        base,
        auth,
      );
    }

    // 4. Classify into semantic actions.
    const classification = classify(request, view.registry, view.inventory);
    this.deps.observe?.("classify", since(t));
    if (!classification.ok) throw await this.refuse(new ProxyRefusal("malformed", classification.code, classification.reason), base, auth);
    const match = view.registry.match(request.host, request.port, request.scheme);
    const descriptor: ServiceDescriptor | null = match.kind === "service" ? match.descriptor : null;

    // 5. Decide, purely, over the task's policy.
    t = process.hrtime.bigint();
    const compiled = view.policyFor(auth.task);
    if ("error" in compiled) {
      throw await this.refuse(new ProxyRefusal("denied", "policy_invalid", `the task's policy cannot be used: ${compiled.error}`), base, auth);
    }
    const decision = decide(compiled.policy, classification.actions, Date.now());
    this.deps.observe?.("decide", since(t));
    const detail = { ...base, url: canonicalUrl(request), service: classification.service, actions: classification.actions, mode: decision.mode, wouldBe: decision.wouldBe ?? null };

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
      await this.record("proxy.hold", "hold", detail, auth, decision);
      const result = await this.deps.holds.hold({ auth, request, actions: classification.actions, reason: decision.reason, eventId });
      if (result.outcome !== "approved") {
        const code = result.outcome === "expired" ? "approval_timeout" : "approval_denied";
        throw await this.refuse(new ProxyRefusal("denied", code, result.reason, { approvalId: result.approvalId }), { ...detail, approvalId: result.approvalId }, auth, decision);
      }
      await this.record("proxy.approved", "allow", { ...detail, approvalId: result.approvalId, approvedBy: result.decidedBy }, auth, decision);
    } else {
      // 8 (before 7). The decision is durable before anything leaves.
      await this.record("proxy.decision", "allow", detail, auth, decision);
    }
    return { auth, request, descriptor, destination, actions: classification.actions, effect: decision.effect, decision: decision.decision, eventId, startedAt };
  }

  /** Authenticates a CONNECT before any TLS work; refusals are audited like any other. */
  async authenticateConnect(incoming: Pick<IncomingAction, "listener" | "clientAddress" | "identity">, target: string): Promise<AuthenticatedTask> {
    const base = { eventId: randomUUID(), listener: incoming.listener, client: incoming.clientAddress, method: "CONNECT", url: target.slice(0, 300) };
    const view = this.deps.view();
    if (!view) throw await this.refuse(new ProxyRefusal("unavailable", "policy_unavailable", "the proxy has no policy snapshot yet"), base, null);
    return this.authenticate({ ...incoming, method: "CONNECT", url: "", headers: {}, rawHeaders: [], body: null }, view).catch(async (refusal: ProxyRefusal) => {
      throw await this.refuse(refusal, base, null);
    });
  }

  /**
   * A CONNECT to a passthrough (host-only) service: the tunnel's contents will not be inspected,
   * so it is one action, `tunnel`, with the highest effect, on the service's environment. A rule
   * must allow irreversible effects on that service (with waive_approval, or it is held).
   */
  async evaluateTunnel(incoming: Omit<IncomingAction, "method" | "url" | "headers" | "rawHeaders" | "body">, host: string, port: number): Promise<ForwardPlan> {
    const startedAt = process.hrtime.bigint();
    const eventId = randomUUID();
    const base = { eventId, listener: incoming.listener, client: incoming.clientAddress, method: "CONNECT", url: `${host}:${port}` };
    const view = this.deps.view();
    if (!view) throw await this.refuse(new ProxyRefusal("unavailable", "policy_unavailable", "the proxy has no policy snapshot yet"), base, null);
    const auth = await this.authenticate({ ...incoming, method: "CONNECT", url: "", headers: {}, rawHeaders: [], body: null }, view).catch(async (refusal: ProxyRefusal) => {
      throw await this.refuse(refusal, base, null);
    });
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
    return { auth, request, descriptor, destination, actions: [action], effect: "irreversible", decision: "allow", eventId, startedAt };
  }

  private async authenticate(incoming: IncomingAction, view: EnforcementView): Promise<AuthenticatedTask> {
    let token: string | null;
    if (incoming.identity.kind === "token") {
      token = incoming.identity.token;
      if (!token) throw new ProxyRefusal("identity", "token_missing", "a task token is required in Proxy-Authorization");
    } else {
      const taskId = view.snapshot.sandboxes.get(incoming.identity.sourceAddress);
      if (!taskId) throw new ProxyRefusal("identity", "sandbox_unknown", "this address belongs to no sandbox");
      const task = view.snapshot.tasks.get(taskId);
      if (!task) throw new ProxyRefusal("identity", "task_revoked", "the sandbox's task is not active");
      // The snapshot is only as fresh as its last reload: expiry is checked on every request.
      if (task.expiresAt.getTime() <= Date.now()) throw new ProxyRefusal("identity", "task_expired", "the sandbox's task has expired");
      return { task, agentId: task.agentId, taskId: task.id, jti: null, via: "sandbox", token: null };
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

  private async record(type: string, outcome: string, data: Record<string, unknown>, auth: AuthenticatedTask | null, decision?: Decision, reason?: string): Promise<void> {
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
    } catch {
      throw new ProxyRefusal("unavailable", "audit_unavailable", "the decision could not be recorded, so the request was not forwarded");
    }
    this.deps.onDecision?.(outcome, event.effect);
  }

  /** Records a refusal (best effort for the audit itself) and returns it, carrying the event id. */
  private async refuse(refusal: ProxyRefusal, data: Record<string, unknown>, auth: AuthenticatedTask | null, decision?: Decision): Promise<ProxyRefusal> {
    const type = refusal.kind === "identity" ? "proxy.identity_failed" : refusal.kind === "denied" ? "proxy.decision" : "proxy.rejected";
    try {
      await this.record(type, "deny", { ...data, code: refusal.code, kind: refusal.kind }, auth, decision, refusal.reason);
      refusal.auditEventId = String(data.eventId);
    } catch (error) {
      // Refusing is safe even when it cannot be recorded; say so in the response.
      if (error instanceof ProxyRefusal) refusal.extra.auditWarning = "this refusal could not be recorded";
    }
    return refusal;
  }
}
