import { randomUUID } from "node:crypto";
import { decide, type Decision } from "@/lib/policy/decide";
import { canonicalizeRequest, canonicalUrl, recordedTarget } from "@/lib/semantics/canonical";
import { classifyMatched } from "@/lib/semantics/classify";
import { resolveEnvironment } from "@/lib/semantics/inventory";
import type { ServiceMatch } from "@/lib/semantics/registry";
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { CanonicalRequest, SemanticAction } from "@/lib/semantics/types";
import { GRANT_HEADER, heldAnswer, isStatusRequest, statusAnswer, statusRequestId, wantsAsync } from "../approvals/async-hold";
import { isDatabaseUnavailable } from "@/lib/db/errors";
import { compactActions, unrecordableActions } from "../audit/compact";
import type { AuthenticatedTask } from "../identity/token-verifier";
import type { EnforcementState } from "./enforcement-state";
import type { CheckedDestination } from "./forwarder";
import { ProxyRefusal } from "./errors";
import { leadingRequestLine } from "./body";
import { withoutConnectionListed } from "./headers";
import { serviceKey } from "@/lib/vault/host";
import { PipelineAudit, type Recorded } from "./pipeline-audit";
import { checkScope } from "./scope-gate";
import type { ForwardPlan, ReceivedRequest } from "./types";
import { MCP_SESSION_HEADER } from "./mcp-sessions";

export type { DestinationChecker, HoldGate, PipelineDeps } from "./pipeline-audit";
import type { HoldGate } from "./pipeline-audit";

/** One request being judged: what every stage reads, fixed when it began. */
export interface Judgement {
  received: ReceivedRequest;
  /** The enforcement state the request is judged by, read once (a reload swaps in a new one). */
  state: EnforcementState;
  eventId: string;
  startedAt: bigint;
  /** Who and what, for audit events and log lines (agent-controlled values cut short). */
  base: JudgementBase;
}

/** The first facts of every event about a request. */
export interface JudgementBase extends Record<string, unknown> {
  eventId: string;
  listener: string;
  client: string | null | undefined;
  method: string;
  url: string;
}

/** The one parsed request that is decided and forwarded, and its canonical URL. */
export interface Canonical {
  request: CanonicalRequest;
  url: string;
}

/** A request with its semantic actions and the service it was matched to (matched once). */
export interface Classified extends Canonical {
  descriptor: ServiceDescriptor | null;
  service: string;
  actions: SemanticAction[];
  /** How the request was read (null: a host no service claims, or a tunnel). */
  protocol?: "rest" | "graphql" | "sql-http" | "mcp" | null;
  /** A passthrough tunnel: one `tunnel` action, contents not inspected, never held. */
  hostOnly?: boolean;
}

export interface Decided extends Classified {
  decision: Decision;
  /** What the audit events of this request carry from here on. */
  detail: Record<string, unknown>;
}

export interface Approval {
  approvalId: string;
  decidedBy: string | null;
}

/**
 * Headers whose duplicates change meaning; a request carrying two is ambiguous. Content-Encoding
 * too: Node joins two into one value (`identity, gzip`) that was forwarded as it came, where one
 * server decodes by the first and another by every one.
 */
const SINGLE = new Set(["host", "content-length", "content-type", "content-encoding", "transfer-encoding", "authorization", "proxy-authorization", MCP_SESSION_HEADER]);

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
const destinationError = () => new ProxyRefusal("bad_gateway", "destination_error", "the destination could not be checked");

/**
 * The stages of the request path, each a named step that takes what the previous one returned
 * (handler.ts calls them in order: authenticate -> readBody -> canonicalise -> classify -> decide
 * -> checkDestination -> hold -> record; then forward and complete). A stage that refuses throws
 * a ProxyRefusal that is already audited. Passthrough tunnels and CONNECT admission use the same
 * stages (tunnel-path.ts).
 */
export class Pipeline extends PipelineAudit {
  /** The enforcement state in force now (null before the first policy load). */
  state(): EnforcementState | null {
    return this.deps.state();
  }

  /** Starts judging a request by `state` (the one in force, unless the caller already read it). */
  async begin(received: ReceivedRequest, state: EnforcementState | null = this.deps.state()): Promise<Judgement> {
    const startedAt = process.hrtime.bigint();
    const eventId = randomUUID();
    const base: JudgementBase = { eventId, listener: received.listener, client: received.clientAddress, method: received.method.slice(0, 32), url: recordedTarget(received.url) };
    if (!state) throw await this.refuse(new ProxyRefusal("unavailable", "policy_unavailable", "the proxy has no policy snapshot yet"), base, null);
    // A snapshot PostgreSQL has not confirmed for too long may be missing a revocation or a task's
    // end committed just before it stopped answering: nothing is decided by it any more.
    if (this.deps.policyTooStale?.()) throw await this.refuse(new ProxyRefusal("unavailable", "policy_stale", "the proxy cannot confirm its policy with the database (it has not answered for too long), so nothing is forwarded; send it again later"), base, null);
    return { received, state, eventId, startedAt, base };
  }

  /**
   * Identify and authenticate, then the task's and agent's budgets. The connection is registered
   * under the task, agent and jti (so a kill switch closes it) unless the caller registers it
   * itself later (a tunnel, before its `200`).
   */
  async authenticate(j: Judgement, { register = true } = {}): Promise<AuthenticatedTask> {
    const t = process.hrtime.bigint();
    const auth = await this.identify(j.received, j.state).catch(async (refusal: ProxyRefusal) => {
      throw await this.refuse(refusal, j.base, null);
    });
    const limited = this.deps.limits?.admit(auth, j.received.connection);
    if (limited) throw await this.refuse(limited, j.base, auth);
    this.deps.observe?.("authenticate", since(t));
    if (register && j.received.connection) this.deps.connections?.register(j.received.connection, { taskId: auth.taskId, agentId: auth.agentId, jti: auth.jti });
    return auth;
  }

  /** The body only now: an unauthenticated client never makes the worker read or buffer one. */
  async readBody(j: Judgement, auth: AuthenticatedTask): Promise<Buffer | null> {
    const read = j.received.readBody;
    if (!read) return j.received.body;
    return read().catch(async (error: unknown) => {
      throw await this.refuse(error instanceof ProxyRefusal ? error : new ProxyRefusal("malformed", "body_error", "the request body could not be read"), j.base, auth);
    });
  }

  /** Parse and canonicalise once: this object is what is decided and what is forwarded. */
  async canonicalise(j: Judgement, auth: AuthenticatedTask, body: Buffer | null): Promise<Canonical> {
    const t = process.hrtime.bigint();
    const { received } = j;
    const dup = duplicateHeader(received.rawHeaders);
    if (dup) throw await this.refuse(new ProxyRefusal("malformed", "duplicate_header", `duplicate ${dup} header`), j.base, auth);
    // Node's parser takes away the chunking and nothing else: a body also coded another way
    // (`gzip, chunked`) would reach the upstream still coded and without its coding named
    // (Transfer-Encoding is hop-by-hop), so it is refused as a coding Bulkhead does not handle.
    const transfer = received.headers["transfer-encoding"];
    if (transfer !== undefined && transfer.trim().toLowerCase() !== "chunked") {
      throw await this.refuse(new ProxyRefusal("malformed", "unsupported_transfer_encoding", `Transfer-Encoding "${transfer.slice(0, 64)}": only chunked is accepted`), j.base, auth);
    }
    // A body that is itself an HTTP request is what a CL.0 desync runs: refused whatever the method.
    const smuggled = body ? leadingRequestLine(body) : null;
    if (smuggled !== null) {
      throw await this.refuse(new ProxyRefusal("malformed", "body_is_request", `the body begins with an HTTP request line ("${smuggled.slice(0, 64)}"): an upstream that does not read the body would run it as a request of its own`), j.base, auth);
    }
    // Headers listed in Connection never reach the upstream: the classifier does not see them either.
    const canonical = canonicalizeRequest({ method: received.method, url: received.url, headers: withoutConnectionListed(received.headers), body });
    if (!canonical.ok) throw await this.refuse(new ProxyRefusal("malformed", canonical.code, canonical.reason), j.base, auth);
    const request = canonical.request;
    // The header the endpoint's vault credential goes in reaches the upstream as the vault's, never
    // as the agent wrote it (forward replaces or drops it): the classifier does not see the agent's
    // either. Neon's connection string names the database; judged as the agent's, a staging name
    // there passed while the credential's production string was what the upstream got.
    const stored = j.state.credentials.get(serviceKey(request.scheme, request.host, request.port));
    if (stored) delete request.headers[stored.headerName.toLowerCase()];
    const tunnel = received.tunnelAuthority;
    // An IPv6 address is bracketed in a canonical host, and may come without brackets from a listener.
    const tunnelHost = tunnel && tunnel.host.includes(":") && !tunnel.host.startsWith("[") ? `[${tunnel.host}]` : tunnel?.host;
    if (tunnel && (request.host !== tunnelHost || request.port !== tunnel.port)) {
      const why = `request is for ${request.host}:${request.port} but the tunnel was authorised for ${tunnel.host}:${tunnel.port}`;
      throw await this.refuse(new ProxyRefusal("malformed", "authority_mismatch", why), j.base, auth);
    }
    // A status poll of a held request (202-and-poll) is answered by Bulkhead itself, never forwarded.
    if (isStatusRequest(request)) throw await this.holdStatus(auth, request, j.base);
    this.deps.observe?.("canonicalise", since(t));
    return { request, url: canonicalUrl(request) };
  }

  /**
   * Classify into semantic actions, matching the service registry once (the match also names the
   * descriptor the destination is checked against). Then layer 1 before any policy: every action
   * must lie inside the scope the request carries.
   */
  async classify(j: Judgement, auth: AuthenticatedTask, c: Canonical): Promise<Classified> {
    const t = process.hrtime.bigint();
    const match = j.state.registry.match(c.request.host, c.request.port, c.request.scheme);
    const classification = classifyMatched(c.request, match, j.state.inventory);
    this.deps.observe?.("classify", since(t));
    if (!classification.ok) throw await this.refuse(new ProxyRefusal("malformed", classification.code, classification.reason), j.base, auth);
    // Every action of a request that may be forwarded is recorded whole: more than an event holds is refused.
    const unrecordable = unrecordableActions(classification.actions);
    if (unrecordable) {
      const data = { ...j.base, service: classification.service, url: c.url, actionCount: classification.actions.length, actions: compactActions(classification.actions, c.request) };
      throw await this.refuse(new ProxyRefusal("malformed", "too_many_actions", unrecordable), data, auth);
    }
    // Written out rather than spread from c: a spread followed by more keys takes V8's slow path
    // (this literal is built for every request).
    const classified: Classified = { request: c.request, url: c.url, descriptor: match.kind === "service" ? match.descriptor : null, service: classification.service, actions: classification.actions, protocol: classification.protocol ?? null };
    const outside = this.outsideScope(j, auth, classified, () => ({ url: c.url, actions: compactActions(classified.actions, c.request) }));
    if (outside) throw await outside;
    if (classified.protocol === "mcp") await this.checkMcpSession(j, auth, classified);
    return classified;
  }

  /**
   * A passthrough (host-only) service reached by a tunnel: its contents will not be inspected,
   * so it is one action, `tunnel`, with the highest effect, on the service's environment.
   */
  async classifyTunnel(j: Judgement, auth: AuthenticatedTask, target: { host: string; port: number; match: ServiceMatch }): Promise<Classified> {
    const { host, port, match } = target;
    if (match.kind !== "service" || match.descriptor.proxy.tls !== "passthrough") {
      throw await this.refuse(new ProxyRefusal("denied", "tunnel_not_allowed", `${host}:${port} is not a passthrough service`), j.base, auth);
    }
    const descriptor = match.descriptor;
    const action: SemanticAction = {
      service: descriptor.id,
      environment: resolveEnvironment(j.state.inventory, { service: descriptor.id, host, keys: [host], fixed: descriptor.environment }),
      resource: host,
      operation: "tunnel",
      effect: "irreversible",
      detail: { note: "host-only service: the tunnel's contents are not inspected" },
    };
    const request = { method: "CONNECT", scheme: "https" as const, host, port, path: "/", query: "", headers: {} };
    const classified = { request, url: `${host}:${port}`, descriptor, service: descriptor.id, actions: [action], hostOnly: true };
    // Layer 1 judges a tunnel like any other action (irreversible, so only a scope allowing that reaches it).
    const outside = this.outsideScope(j, auth, classified, () => ({ actions: [action], hostOnly: true }));
    if (outside) throw await outside;
    return classified;
  }

  /**
   * An MCP request may name only a session its own task opened (mcp-sessions.ts): any other id,
   * another task's or one this worker never handed out, is answered as the server answers a
   * session it does not know (404), so that the client starts a session of its own.
   */
  private async checkMcpSession(j: Judgement, auth: AuthenticatedTask, k: Classified): Promise<void> {
    const id = k.request.headers[MCP_SESSION_HEADER];
    const sessions = this.deps.mcpSessions;
    if (id === undefined || !sessions) return;
    const whose = sessions.check(serviceKey(k.request.scheme, k.request.host, k.request.port), id, auth.taskId);
    if (whose === "own") return;
    const why =
      whose === "foreign"
        ? "the MCP session named by Mcp-Session-Id was opened by another task; a task may use only sessions it opened itself: start one with initialize"
        : "the MCP session named by Mcp-Session-Id was not opened by this task through this proxy (or was forgotten when the proxy restarted): start a new session with initialize";
    const data = { ...j.base, service: k.service, url: k.url, actions: compactActions(k.actions, k.request), mcpSession: whose };
    throw await this.refuse(new ProxyRefusal("not_found", "mcp_session_unknown", why), data, auth);
  }

  /**
   * Layer 1: the refusal (being recorded) when an action lies outside the request's scope, else
   * null. The event's data is built only for a refusal: an allowed request builds its compact
   * actions once, in decide().
   */
  private outsideScope(j: Judgement, auth: AuthenticatedTask, k: Classified, data: () => Record<string, unknown>): Promise<ProxyRefusal> | null {
    const outside = checkScope(auth.scope, k.actions);
    return outside ? this.refuse(outside.refusal, { ...j.base, service: k.service, ...data(), layer: "identity", scope: auth.scope.text }, auth, outside.verdict) : null;
  }

  /** Decide, purely, over the task's compiled policy. A deny ends here; a tunnel is never held. */
  async decide(j: Judgement, auth: AuthenticatedTask, k: Classified): Promise<Decided> {
    const t = process.hrtime.bigint();
    const compiled = j.state.policyFor(auth.task);
    if ("error" in compiled) {
      const why = k.hostOnly ? compiled.error : `the task's policy cannot be used: ${compiled.error}`;
      throw await this.refuse(new ProxyRefusal("denied", "policy_invalid", why), j.base, auth);
    }
    const decision = decide(compiled.policy, k.actions, Date.now());
    this.deps.observe?.("decide", since(t));
    if (k.hostOnly) {
      const detail = { ...j.base, service: k.service, actions: k.actions, mode: decision.mode, hostOnly: true };
      // Tunnels are not held: an approval cannot be bound to contents nobody will see.
      if (decision.decision !== "allow") throw await this.refuse(new ProxyRefusal("denied", "policy_deny", `host-only service, contents not inspected: ${decision.reason}`, { ruleId: decision.ruleId }), detail, auth, decision);
      return { ...k, decision, detail };
    }
    // Written out rather than spread from base (same keys, same order): this literal is built for
    // every request, and a spread followed by more keys takes V8's slow path.
    const b = j.base;
    const detail = { eventId: b.eventId, listener: b.listener, client: b.client, method: b.method, url: k.url, service: k.service, actions: compactActions(k.actions, k.request), mode: decision.mode, wouldBe: decision.wouldBe ?? null };
    if (decision.decision === "deny") throw await this.refuse(new ProxyRefusal("denied", "policy_deny", decision.reason, { ruleId: decision.ruleId, effect: decision.effect }), detail, auth, decision);
    // k is not host-only here (that returned above): its keys written out, as for detail.
    return { request: k.request, url: k.url, descriptor: k.descriptor, service: k.service, actions: k.actions, protocol: k.protocol ?? null, decision, detail };
  }

  /** Where would it go? A forbidden destination is refused before any human is asked. */
  async checkDestination(j: Judgement, auth: AuthenticatedTask, d: Pick<Decided, "request" | "descriptor"> & { detail?: Record<string, unknown>; decision?: Recorded }): Promise<CheckedDestination> {
    const t = process.hrtime.bigint();
    try {
      const destination = await this.deps.destinations.check(d.request, d.descriptor);
      this.deps.observe?.("destination", since(t));
      return destination;
    } catch (error) {
      throw await this.refuse(error instanceof ProxyRefusal ? error : destinationError(), d.detail ?? j.base, auth, d.decision);
    }
  }

  /**
   * Where would it go, before anyone is asked: a request to be held is checked without looking its
   * name up (null: checked in full once approved, in recordDecision), so an agent cannot make the
   * worker send names of its choosing (`<data>.attacker.example`) to the resolver by sending
   * requests that wait for a person, or are refused for the hold limit, or never approved.
   */
  async checkDestinationBeforeHold(j: Judgement, auth: AuthenticatedTask, d: Decided): Promise<CheckedDestination | null> {
    const precheck = this.deps.destinations.precheck;
    if (d.decision.decision !== "hold" || !precheck) return this.checkDestination(j, auth, d);
    try {
      await precheck.call(this.deps.destinations, d.request, d.descriptor);
      return null;
    } catch (error) {
      throw await this.refuse(error instanceof ProxyRefusal ? error : destinationError(), d.detail, auth, d.decision);
    }
  }

  /** A human decides a held request; the approval is bound to this exact request. Null when nothing is held. */
  async hold(j: Judgement, auth: AuthenticatedTask, d: Decided): Promise<Approval | null> {
    const { decision, detail, request } = d;
    if (decision.decision !== "hold") return null;
    const grant = request.headers[GRANT_HEADER];
    const held = { auth, request, actions: d.actions, reason: decision.reason, eventId: j.eventId };
    if (grant === undefined) await this.record("proxy.hold", "hold", detail, auth, decision);
    // Approvals are rows in PostgreSQL: while it is away a request that needs one is refused
    // (503, audited) with the reason, not left to fail as an internal error. Any other failure
    // stays what it is (an internal error), not reported as the database's.
    const unavailable = async (error: unknown): Promise<never> => {
      if (error instanceof ProxyRefusal || !isDatabaseUnavailable(error)) throw error;
      throw await this.refuse(new ProxyRefusal("unavailable", "approvals_unavailable", "the request needs a person's approval and approvals cannot be recorded or read right now (the database is unreachable); nothing was forwarded, send it again later"), detail, auth, decision);
    };
    if (grant === undefined && wantsAsync(request.headers) && this.deps.holds.open) {
      const opened = await this.deps.holds.open(held).catch(unavailable);
      if (opened.outcome === "limited") throw await this.refuse(new ProxyRefusal("rate_limited", "hold_limit", opened.reason), detail, auth, decision);
      const answer = heldAnswer(opened.approvalId, opened.expiresAt);
      // The proxy.hold event just recorded: the approval row points at it too.
      answer.auditEventId = j.eventId;
      answer.context = { ...detail, taskId: auth.taskId, agentId: auth.agentId, actions: undefined, approvalId: opened.approvalId };
      throw answer;
    }
    const result = await (grant !== undefined && this.deps.holds.redeem ? this.deps.holds.redeem({ auth, request, grant, actions: d.actions }) : this.holdWhileConnected(j, held)).catch(unavailable);
    if (result.outcome === "limited") {
      // Too many of this task's requests already wait: refused without asking anyone, so a flood never buries other tasks.
      throw await this.refuse(new ProxyRefusal("rate_limited", "hold_limit", result.reason), detail, auth, decision);
    }
    if (result.outcome !== "approved") {
      const code = result.outcome === "expired" ? ("used" in result && result.used ? "approval_used" : "approval_timeout") : result.outcome === "cancelled" ? "approval_cancelled" : "approval_denied";
      throw await this.refuse(new ProxyRefusal("denied", code, result.reason, { approvalId: result.approvalId }), { ...detail, approvalId: result.approvalId }, auth, decision);
    }
    return { approvalId: result.approvalId, decidedBy: result.decidedBy };
  }

  /**
   * The decision is durable before anything leaves; then the request's authority is confirmed in
   * the state in force now. Returns the plan to forward, carrying that state (its credentials).
   */
  async recordDecision(j: Judgement, auth: AuthenticatedTask, d: Decided, destination: CheckedDestination | null, approval: Approval | null): Promise<ForwardPlan> {
    const { decision, detail } = d;
    if (approval) await this.record("proxy.approved", "allow", { ...detail, approvalId: approval.approvalId, approvedBy: approval.decidedBy }, auth, decision);
    else await this.record("proxy.decision", "allow", detail, auth, decision);
    const state = await this.confirm(j.received, auth, detail, decision, approval?.approvalId, d.actions, { request: d.request, state: j.state, hostOnly: d.hostOnly });
    // The destination is checked again under the service as it is now when the services changed
    // since the request began (and always for a held request): the address checked then may since
    // have been taken from the service (its internal ranges or ports narrowed while the request
    // waited for a person, or while its body arrived), and it was dialled all the same.
    let descriptor = d.descriptor;
    let checked = destination;
    if (approval || state.registry !== j.state.registry || checked === null) {
      const match = state.registry.match(d.request.host, d.request.port, d.request.scheme);
      descriptor = match.kind === "service" ? match.descriptor : null;
      const released = { ...detail, eventId: `${j.eventId}:destination`, decisionEventId: j.eventId, ...(approval ? { approvalId: approval.approvalId } : {}) };
      checked = await this.checkDestination(j, auth, { request: d.request, descriptor, detail: released, decision });
    }
    const why = { reason: decision.reason, ruleId: decision.ruleId, mode: decision.mode, wouldBe: decision.wouldBe ?? null };
    return { auth, state, request: d.request, url: d.url, descriptor, protocol: d.protocol ?? null, destination: checked, actions: d.actions, effect: decision.effect, decision: decision.decision, approvalId: approval?.approvalId ?? null, why, eventId: j.eventId, startedAt: j.startedAt };
  }

  /**
   * Waits for a person while the client's connection stays open; its closing cancels the hold.
   * So does the client's end of sending (a FIN): a client that closed its socket sends only that,
   * and is indistinguishable from one that half-closed until an answer is written to it, which
   * for a hold may be minutes later; an approval meanwhile would run a request nobody waits for.
   * (Requests that are not held are answered on a half-closed connection: explicit-listener.ts.)
   */
  private async holdWhileConnected(j: Judgement, held: Parameters<HoldGate["hold"]>[0]): ReturnType<HoldGate["hold"]> {
    const connection = j.received.connection;
    if (!connection) return this.deps.holds.hold(held);
    const abandoned = new AbortController();
    const gone = () => abandoned.abort();
    if (connection.destroyed || connection.readableEnded) gone();
    else connection.once("close", gone).once("end", gone);
    try {
      return await this.deps.holds.hold({ ...held, abandoned: abandoned.signal });
    } finally {
      connection.off("close", gone).off("end", gone);
    }
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
}
