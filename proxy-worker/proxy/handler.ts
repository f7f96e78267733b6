import { recordedTarget } from "@/lib/semantics/canonical";
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { TOKEN_ERROR_REASONS, TokenError, tokenRefusalReason, type TokenErrorReason } from "@/lib/identity/errors";
import type { Logger } from "@/lib/log";
import { selectCredential } from "@/lib/vault/binding";
import { serviceKey } from "@/lib/vault/host";
import { agentCredentialHeaders } from "./agent-credentials";
import { readBody } from "./body";
import { logDecision, refusalLine } from "./decision-log";
import { ProxyRefusal, refusalResponse } from "./errors";
import { connectionAuth, type ConnectionRegistry } from "./connections";
import type { Forwarder } from "./forwarder";
import { connectionTokens, downstreamHeaders, upstreamHeaders } from "./headers";
import type { Duplex } from "node:stream";
import type { Pipeline } from "./pipeline";
import { namePatternFor, patternFor, redactHeaderValue, redactResponseHeaderName, StreamRedaction } from "./redact";
import { redactionForms } from "./redaction-scope";
import { ResponseRelay } from "./relay";
import { MCP_SESSION_HEADER, type McpSessions } from "./mcp-sessions";
import type { RefusalAudit } from "./refusal-audit";
import type { AuditSink, ForwardPlan, ListenerKind, ReceivedRequest } from "./types";

export interface HandlerDeps {
  pipeline: Pipeline;
  forwarder: Forwarder;
  audit: AuditSink;
  log: Logger;
  /** Open client connections (a kill switch closes them); a request being decided is answered first. */
  connections?: ConnectionRegistry;
  maxBodyBytes: number;
  clientBodyTimeoutMs: number;
  /**
   * How long a client may take nothing of its answer while the upstream is paused for it (the
   * upstream timeout: what undici allows an upstream that sends nothing); unset: no limit.
   */
  clientStallTimeoutMs?: number;
  /** Audits refusals that happen outside the pipeline (listener plumbing, internal faults). */
  refusals?: RefusalAudit;
  /** Requests being handled right now (begin/end around each). */
  inFlight?: { begin(): void; end(): void };
  onForwarded?: (status: number, seconds: number) => void;
  onCredentialUsed?: (credentialId: string) => void;
  /** Which task opened each MCP session: an MCP answer's `Mcp-Session-Id` is bound to the request's task (mcp-sessions.ts). */
  mcpSessions?: McpSessions;
}

export interface RequestContext {
  listener: ListenerKind;
  identity: ReceivedRequest["identity"];
  /** Absolute URL of the request (built from the authorised authority inside a tunnel). */
  url: string;
  tunnelAuthority?: { host: string; port: number };
  /** The client's connection to Bulkhead (inside a tunnel: the CONNECT socket, not the decrypted one). */
  connection?: Duplex;
  /**
   * The client's address when the request's socket has none of its own to say it: a TLS layer
   * over a relayed stream (a sandbox's intercepted TLS) has no remoteAddress.
   */
  clientAddress?: string;
}

/**
 * The client's address: the listener's word, the request's socket's, or the connection's under a
 * TLS layer. Empty only when none is known. Inside a sandbox's intercepted TLS it was empty, so
 * the check binding a token to the sandbox it is presented from found no sandbox, and another
 * task's token was honoured there.
 */
export function clientAddressOf(req: IncomingMessage, ctx?: Pick<RequestContext, "clientAddress" | "connection">): string {
  return ctx?.clientAddress || req.socket.remoteAddress || (ctx?.connection as { remoteAddress?: string } | undefined)?.remoteAddress || "";
}

/** Sends a refusal as the response (the one place refusals become HTTP). */
export function sendRefusal(res: ServerResponse, refusal: ProxyRefusal): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const r = refusalResponse(refusal);
  res.writeHead(r.status, r.headers);
  res.end(r.body);
}

/**
 * Audits a refusal that never reached the pipeline (a listener-level problem with the request),
 * answers with it, and writes its decision log line.
 */
export async function refuseRequest(deps: Pick<HandlerDeps, "refusals" | "log"> & { connections?: Pick<ConnectionRegistry, "ownerOf"> }, req: IncomingMessage, res: ServerResponse, refusal: ProxyRefusal, listener: ListenerKind): Promise<void> {
  const data = { eventId: randomUUID(), listener, client: req.socket.remoteAddress ?? "", method: (req.method ?? "").slice(0, 32), url: recordedTarget(req.url ?? "") };
  // Refused before it was authenticated, on a connection that may have been (keep-alive).
  const auth = connectionAuth(deps, req.socket);
  refusal.context = { ...data, ...auth, ...refusal.context };
  if (deps.refusals) await deps.refusals.record(refusal, { data, auth });
  sendRefusal(res, refusal);
  logDecision(deps.log, refusalLine(refusal));
}

function joinHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  const headers = req.headers;
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/**
 * The request path, top to bottom: every HTTP request (explicit proxy, intercepted HTTPS, the
 * transparent and sandbox listeners) goes through it. Each stage is a named step that takes what
 * the previous one returned; a stage that refuses throws a ProxyRefusal that is already audited,
 * and it becomes the response. Never rejects: every failure becomes a refusal (or, once the
 * response has started, a closed connection).
 */
export function handleProxyRequest(deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
  // Node gives a response its connection once the responses before it on that connection are
  // done: a request pipelined behind others has none yet, and waits for its turn.
  return res.socket !== null ? judgeAndAnswer(deps, req, res, ctx) : awaitTurn(deps, req, res, ctx);
}

/** Requests pipelined on one connection that may wait for their turn; one more and the connection is cut. */
export const MAX_PIPELINED = 32;
const kWaiting = Symbol("bulkhead.pipelinedWaiting");
type PipelinedSocket = IncomingMessage["socket"] & { [kWaiting]?: number };

/**
 * Requests pipelined on one connection are judged one at a time, each once the answers before it
 * are out: HTTP/1.1 answers them in that order anyway, and judging them all at once let one
 * connection carry any number of requests in flight (each with its body held, up to
 * BULKHEAD_MAX_BODY_BYTES), past the per-task and per-agent connection caps, and have a later
 * request forwarded while an earlier one waited for a person's approval. More than
 * MAX_PIPELINED waiting is no client's ordinary use: the connection is cut, and that is audited.
 */
function awaitTurn(deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
  const socket = req.socket as PipelinedSocket;
  const waiting = (socket[kWaiting] ?? 0) + 1;
  socket[kWaiting] = waiting;
  if (waiting > MAX_PIPELINED) {
    if (waiting === MAX_PIPELINED + 1) void auditPipelineCut(deps, req, ctx);
    socket.destroy();
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    const settle = () => {
      res.off("socket", turn);
      req.off("close", gone);
      socket[kWaiting] = (socket[kWaiting] ?? 1) - 1;
    };
    const turn = () => {
      settle();
      resolve(judgeAndAnswer(deps, req, res, ctx));
    };
    // The connection closed before this request's turn: nothing was judged, nothing to answer.
    const gone = () => {
      if (!req.destroyed) return;
      settle();
      resolve();
    };
    res.once("socket", turn);
    req.on("close", gone);
  });
}

async function auditPipelineCut(deps: Pick<HandlerDeps, "refusals" | "log" | "connections">, req: IncomingMessage, ctx: RequestContext): Promise<void> {
  const refusal = new ProxyRefusal("rate_limited", "pipeline_too_deep", `more than ${MAX_PIPELINED} requests pipelined on one connection: it was closed (send requests on more connections, or wait for answers)`);
  const data = { eventId: randomUUID(), listener: ctx.listener, client: clientAddressOf(req, ctx), method: (req.method ?? "").slice(0, 32), url: recordedTarget(req.url ?? "") };
  const auth = connectionAuth(deps, req.socket);
  refusal.context = { ...data, ...auth };
  try {
    if (deps.refusals) await deps.refusals.record(refusal, { data, auth });
    logDecision(deps.log, refusalLine(refusal));
  } catch (error) {
    deps.log.error({ err: error instanceof Error ? error.message : String(error) }, "could not record a pipelined connection's cut");
  }
}

async function judgeAndAnswer(deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
  deps.inFlight?.begin();
  // While this request is decided, a kill switch lets its refusal out before closing the connection:
  // released once the refusal is sent (its response finished), or once the request is forwarded.
  const decided = deps.connections?.busy(req.socket) ?? noop;
  let answering = false;
  try {
    let plan: ForwardPlan;
    try {
      const p = deps.pipeline;
      const j = await p.begin(receive(deps, req, res, ctx));
      const auth = await p.authenticate(j);
      const body = await p.readBody(j, auth);
      const canonical = await p.canonicalise(j, auth, body);
      const classified = await p.classify(j, auth, canonical);
      const decision = await p.decide(j, auth, classified);
      const destination = await p.checkDestinationBeforeHold(j, auth, decision);
      const approval = await p.hold(j, auth, decision);
      plan = await p.recordDecision(j, auth, decision, destination, approval);
    } catch (error) {
      answering = true;
      if (error instanceof ProxyRefusal) {
        sendRefusal(res, error);
        logDecision(deps.log, refusalLine(error));
      } else {
        await refuseRequest(deps, req, res, internalRefusal(deps.log, error), ctx.listener);
      }
      releaseWhenAnswered(res, decided);
      return;
    }
    // A kill switch was pulled after the request's authority was last confirmed, while it was
    // still being decided: nothing is forwarded. The agent gets its refusal (the connection closes
    // once it is sent) and the request's completion says why.
    const killed = req.socket.destroyed ? null : (deps.connections?.closedBecause(req.socket) ?? null);
    if (killed) {
      answering = true;
      const refusal = revokedWhileDeciding(killed, plan.approvalId);
      refusal.auditEventId = plan.eventId;
      sendRefusal(res, refusal);
      releaseWhenAnswered(res, decided);
      complete(deps, plan, { status: 0, answered: refusal.status, failure: refusal, cut: null, seconds: Number(process.hrtime.bigint() - plan.startedAt) / 1e9, credential: null, withheld: null }, req, ctx);
      return;
    }
    decided();
    // Closed by the client while it was being decided: nothing is forwarded, and its completion
    // says so (the decision was recorded as allowed before this).
    if (req.socket.destroyed) {
      const closed = new ProxyRefusal("bad_gateway", "connection_closed", "not forwarded: the client's connection closed before the request could be sent");
      complete(deps, plan, { status: 0, answered: 0, failure: closed, cut: null, seconds: Number(process.hrtime.bigint() - plan.startedAt) / 1e9, credential: null, withheld: null }, req, ctx);
      return;
    }
    const outcome = await forward(deps, plan, req, res);
    complete(deps, plan, outcome, req, ctx);
  } catch (error) {
    // Last resort: nothing above should throw, but a fault here must not become an unhandled rejection.
    deps.log.error({ err: error instanceof Error ? error.stack : String(error) }, "unexpected error while answering a request");
    res.destroy();
    decided();
  } finally {
    // A refusal being sent keeps the connection until it is out (releaseWhenAnswered); anything
    // else is done with being decided.
    if (!answering) decided();
    deps.inFlight?.end();
  }
}

const noop = (): void => undefined;

/** Calls `decided` once the refusal being sent on `res` is out (its response finished or closed). */
function releaseWhenAnswered(res: ServerResponse, decided: () => void): void {
  if (res.writableFinished || res.destroyed) decided();
  else res.once("finish", decided).once("close", decided);
}

/** A failure that kept the request from being sent at all (the client went away, or a kill switch). */
function notForwarded(failure: ProxyRefusal): boolean {
  return failure.code === "connection_closed" || failure.kind === "identity" || failure.kind === "denied";
}

/**
 * The refusal of a request decided as allowed (or approved) whose connection a kill switch
 * closed meanwhile: the same answer a new request of the revoked authority would get, or for an
 * approved request the same as `confirm` gives a held request whose authority went away.
 */
function revokedWhileDeciding(reason: string, approvalId: string | null): ProxyRefusal {
  const code = `token_${reason}`;
  if (approvalId) return new ProxyRefusal("denied", "approval_cancelled", `the approval was cancelled because its authority is gone (${code}); nothing was forwarded`, { approvalId });
  // In words with the next step, as a new request of the revoked authority is told (tokenRefusalReason).
  const words = (TOKEN_ERROR_REASONS as readonly string[]).includes(reason) ? tokenRefusalReason(new TokenError(reason as TokenErrorReason)) : `task token refused: ${reason}`;
  return new ProxyRefusal("identity", code, `${words} (while the request was being decided; nothing was forwarded)`);
}

/** The request as the listener received it; its body is read only when the pipeline asks (after authentication). */
function receive(deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): ReceivedRequest {
  return {
    listener: ctx.listener,
    clientAddress: clientAddressOf(req, ctx),
    identity: ctx.identity,
    method: req.method ?? "",
    url: ctx.url,
    headers: joinHeaders(req),
    rawHeaders: req.rawHeaders,
    body: null,
    // Only an authenticated client is invited to send the body it announced (100 Continue), and
    // only when that body will be read (body.ts).
    readBody: () => readBody(req, deps.maxBodyBytes, deps.clientBodyTimeoutMs, () => {
      if (!res.headersSent) res.writeContinue();
    }),
    connection: ctx.connection ?? req.socket,
    tunnelAuthority: ctx.tunnelAuthority,
  };
}

/** What forwarding came to: the upstream's status (0: none), what the client got, and why it failed. */
interface Outcome {
  status: number;
  answered: number;
  failure: ProxyRefusal | null;
  /** The code of what cut an answer that had started (relay.ts), or null. */
  cut: string | null;
  seconds: number;
  credential: { name: string } | null;
  withheld: string | null;
}

/** The request headers that ask for a part of an answer (RFC 9110 §14.2, §13.1.5); upstreamHeaders' names are lower case. */
const PARTIAL_REQUEST = ["range", "if-range", "request-range"];

/**
 * Whether a response's Transfer-Encoding is absent or only `chunked`. HTTP's parser takes off the
 * chunked framing and nothing else, so a body also compressed as a transfer coding (`gzip,
 * chunked`, which Bulkhead never asks for: it sends no `TE`) would reach the client as compressed
 * bytes with no Content-Encoding, which the redaction cannot read and the client can still inflate.
 */
function onlyChunked(value: string | string[] | undefined): boolean {
  if (value === undefined) return true;
  return (Array.isArray(value) ? value : [value]).every((v) => v.split(",").every((coding) => coding.trim().toLowerCase() === "chunked"));
}

/**
 * Forward exactly what was evaluated to the address that was checked, with the agent's own
 * credentials removed and the vault's injected, and stream the answer back (redacted).
 */
async function forward(deps: HandlerDeps, plan: ForwardPlan, req: IncomingMessage, res: ServerResponse): Promise<Outcome> {
  const { request, destination } = plan;
  // Offered only for the exact service host, scheme and port the request was decided for, and
  // injected only if it serves every action, each inside the task's scope (lib/vault/binding.ts).
  const endpoint = serviceKey(request.scheme, request.host, request.port);
  const stored = plan.state.credentials.get(endpoint);
  const { credential, withheld } = selectCredential(stored, plan.actions, plan.auth.scope);
  // The endpoint's secret is redacted from every answer, injected into this request or not: an
  // upstream that was sent it once (an earlier request, another task's) can hand it back later,
  // in a request log, a "last delivery" page or an error, to a request it was withheld from.
  // So is the secret of the service's credential, from any of the service's other endpoints.
  // And the secrets rotations replaced or deletions removed, of the endpoint and of the services
  // acted on (lib/vault/retired-secrets.ts): only ever redacted, never injected.
  const forms = redactionForms(plan.state.credentials, stored, plan.actions, plan.state.retired, endpoint);
  const secrets = forms ? patternFor(forms) : null;
  const secretNames = forms ? namePatternFor(forms) : null;
  // Credentials the agent brings itself never go upstream, whether or not one is injected: the
  // header the endpoint's credential uses, and every header that carries credentials.
  const strip = connectionTokens(request.headers.connection);
  if (stored) strip.add(stored.headerName.toLowerCase());
  for (const name of agentCredentialHeaders(request.headers)) strip.add(name);
  const headers = upstreamHeaders(
    request.headers,
    strip,
    credential ? { name: credential.headerName, value: credential.headerValue } : null,
    request.port === (request.scheme === "https" ? 443 : 80) ? request.host : `${request.host}:${request.port}`,
  );
  // Echoed secrets can only be found in bodies we can read: whole and uncompressed. A slice
  // (`Range`) of an answer that echoes the secret is too short to be recognised, and slices
  // asked for one after another hand it over piece by piece; so the upstream is asked for the
  // whole answer (a server may always answer a range request with all of it, RFC 9110 §14.2).
  if (secrets) {
    headers["accept-encoding"] = "identity";
    for (const name of PARTIAL_REQUEST) delete headers[name];
  }
  if (credential) deps.onCredentialUsed?.(credential.credentialId);
  // The answer streams back through the relay (relay.ts): redacted, with back-pressure, and
  // ended on both sides if either fails or the client goes away (its response closes, or for a
  // pipelined request whose turn never came, only its connection does), so no request is left
  // waiting forever.
  const relay = new ResponseRelay(res, req.socket, (status, upstream) => {
    // 407 asks the client to authenticate to a proxy: only Bulkhead is the agent's proxy, so an
    // upstream's 407 relayed as it came read as Bulkhead refusing the agent's token.
    if (status === 407) {
      throw new ProxyRefusal("bad_gateway", "upstream_bad_response", "the upstream answered 407 Proxy Authentication Required, which only a proxy sends; it is not passed on as Bulkhead's own refusal");
    }
    const encoding = String(upstream["content-encoding"] ?? "identity").toLowerCase();
    if (secrets && (encoding !== "identity" || !onlyChunked(upstream["transfer-encoding"]))) {
      throw new ProxyRefusal("bad_gateway", "upstream_encoded_body", "the upstream compressed a response that must be checked for echoed secrets");
    }
    if (secrets && status === 206) {
      throw new ProxyRefusal("bad_gateway", "upstream_partial_body", "the upstream answered with a part of a response that must be checked whole for echoed secrets");
    }
    let out = downstreamHeaders(upstream);
    if (secrets) {
      // Names too: an upstream can reflect what it was sent into a header's name (a token: the
      // secret's hexadecimal or base64url form fits), and asterisks are token characters. A name
      // arrives lower-cased, so it is matched against the lower-cased carriers as well.
      const redacted: typeof out = {};
      for (const [k, v] of Object.entries(out)) {
        const value = Array.isArray(v) ? v.map((x) => redactHeaderValue(x, secrets)) : redactHeaderValue(v, secrets);
        const name = redactResponseHeaderName(k, secrets, secretNames);
        const before = redacted[name];
        redacted[name] = before === undefined ? value : [...(Array.isArray(before) ? before : [before]), ...(Array.isArray(value) ? value : [value])];
      }
      out = redacted;
    }
    if (plan.protocol === "mcp" && deps.mcpSessions) observeMcpSession(deps.mcpSessions, endpoint, plan, status, upstream[MCP_SESSION_HEADER]);
    const length = upstream["content-length"];
    // Never on a 204 (RFC 9110 §8.6): it has no body.
    if (typeof length === "string" && status !== 204) out["content-length"] = length;
    out["x-bulkhead-decision"] = plan.decision === "hold" ? "approved" : "allow";
    out["x-bulkhead-event"] = plan.eventId;
    return out;
  }, secrets ? new StreamRedaction(secrets) : null, deps.clientStallTimeoutMs);
  const { status, failure, cut } = await deps.forwarder.forward(request, destination, headers, relay, plan.auth.taskId);
  let answered = status;
  if (failure) {
    failure.auditEventId = plan.eventId;
    answered = failure.status;
    sendRefusal(res, failure);
  }
  const seconds = Number(process.hrtime.bigint() - plan.startedAt) / 1e9;
  return { status, answered, failure, cut, seconds, credential: credential ? { name: credential.name } : null, withheld: withheld ?? null };
}

/**
 * An MCP server's answer: a session it names is the task's from now on (it names one in its
 * answer to `initialize`); the session the request named is forgotten once the server ends it
 * (a successful DELETE) or no longer knows it (404).
 */
function observeMcpSession(sessions: McpSessions, endpoint: string, plan: ForwardPlan, status: number, given: string | string[] | undefined): void {
  const taskId = plan.auth.taskId;
  const sent = plan.request.headers[MCP_SESSION_HEADER];
  if (sent !== undefined && (status === 404 || (plan.request.method === "DELETE" && status >= 200 && status < 300))) sessions.forget(endpoint, sent, taskId);
  if (typeof given === "string" && status < 400) sessions.bind(endpoint, given, taskId);
}

/**
 * The request is done: metrics, one decision log line, and the completion event (recorded
 * without holding the response; the decision was recorded before forwarding). Nothing waits for
 * it, so it is deferred: written with the next decision, or within the fsync interval, instead of
 * costing a write of its own (AuditWal.append). The shipper folds
 * it into the decision's row when both are shipped together, matching it by this event id
 * (audit/fold.ts); otherwise it is a row of its own.
 */
function complete(deps: HandlerDeps, plan: ForwardPlan, outcome: Outcome, req: IncomingMessage, ctx: RequestContext): void {
  const { status, answered, failure, cut, seconds, credential, withheld } = outcome;
  deps.onForwarded?.(status, seconds);
  logDecision(deps.log, {
    eventId: plan.eventId,
    listener: ctx.listener,
    client: clientAddressOf(req, ctx),
    method: plan.request.method,
    url: plan.url,
    taskId: plan.auth.taskId,
    agentId: plan.auth.agentId,
    service: plan.actions[0]?.service ?? null,
    operations: plan.actions.map((a) => a.operation),
    resources: plan.actions.map((a) => a.resource),
    effect: plan.effect,
    decision: plan.decision === "hold" ? "approved" : "allow",
    code: failure?.code,
    reason: failure?.reason ?? plan.why?.reason,
    ruleId: plan.why?.ruleId ?? null,
    mode: plan.why?.mode,
    wouldBe: plan.why?.wouldBe ?? null,
    status: answered,
    destination: plan.destination.address,
    upstreamStatus: status || null,
    durationMs: Math.round(seconds * 1000),
    auditEventId: plan.eventId,
  });
  // Built key by key rather than with conditional spreads (same keys, same order, so the same
  // JSON): a literal with spreads after other keys takes V8's slow path, on every request.
  const data: Record<string, unknown> = { eventId: `${plan.eventId}:completed`, decisionEventId: plan.eventId, upstreamStatus: status, durationMs: Math.round(seconds * 1000), credential: credential?.name ?? null };
  if (withheld) data.credentialWithheld = withheld;
  if (failure) data.failure = failure.code;
  if (cut) data.cut = cut;
  void deps.audit
    .record({
      type: "proxy.completed",
      actorType: "agent",
      actorId: plan.auth.agentId,
      agentId: plan.auth.agentId,
      taskId: plan.auth.taskId,
      // Forwarded: the upstream's answer went to the client, whole or left by the client. Failed:
      // no answer, one the upstream cut short, or one Bulkhead refused to pass on (a compressed
      // answer that must be checked for echoed secrets...), upstream status recorded all the same.
      outcome: status && !failure && cut !== "upstream_closed" && cut !== "upstream_timeout" ? "forwarded" : "failed",
      effect: plan.effect,
      reason: status ? `upstream answered ${status}${failure ? `; not passed on: ${failure.reason}` : ""}${cut ? `; the answer was cut short (${cut})` : ""}` : failure && notForwarded(failure) ? failure.reason : "upstream failed",
      ruleId: null,
      data,
    }, { deferred: true })
    .catch((e: unknown) => deps.log.warn({ err: String(e) }, "completion event could not be recorded"));
}

export function internalRefusal(log: Logger, error: unknown): ProxyRefusal {
  log.error({ err: error instanceof Error ? error.stack : String(error) }, "unexpected error in the request path");
  return new ProxyRefusal("bad_gateway", "internal_error", "the proxy failed to handle the request");
}
