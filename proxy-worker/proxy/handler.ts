import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "@/lib/log";
import { selectCredential } from "@/lib/vault/binding";
import type { CredentialSet } from "@/lib/vault/load-for-injection";
import { serviceKey } from "@/lib/vault/host";
import { agentCredentialHeaders } from "./agent-credentials";
import { readBody } from "./body";
import { ProxyRefusal, refusalResponse } from "./errors";
import type { ConnectionRegistry } from "./connections";
import type { Forwarder } from "./forwarder";
import { connectionTokens, downstreamHeaders, upstreamHeaders } from "./headers";
import type { Pipeline } from "./pipeline";
import { redactHeaderValue, SecretRedactor } from "./redact";
import type { AuditSink, ForwardPlan, IncomingAction, ListenerKind } from "./types";

export interface HandlerDeps {
  pipeline: Pipeline;
  forwarder: Forwarder;
  audit: AuditSink;
  credentials: () => CredentialSet;
  log: Logger;
  /** Open client connections (a kill switch closes them); a request being decided is answered first. */
  connections?: ConnectionRegistry;
  maxBodyBytes: number;
  clientBodyTimeoutMs: number;
  onForwarded?: (status: number, seconds: number) => void;
  onCredentialUsed?: (credentialId: string) => void;
}

export interface RequestContext {
  listener: ListenerKind;
  identity: IncomingAction["identity"];
  /** Absolute URL of the request (built from the authorised authority inside a tunnel). */
  url: string;
  tunnelAuthority?: { host: string; port: number };
}

/** Sends a refusal as the response (the one place refusals become HTTP). */
export function sendRefusal(res: ServerResponse, refusal: ProxyRefusal): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const r = refusalResponse(refusal);
  res.writeHead(r.status, r.headers);
  res.end(r.body);
}

function joinHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** One request: read, evaluate, forward exactly what was evaluated, stream the answer back. */
export async function handleProxyRequest(deps: HandlerDeps, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
  let plan: ForwardPlan;
  // While this request is decided, a kill switch lets its refusal out before closing the connection.
  const decided = deps.connections?.busy(req.socket) ?? (() => undefined);
  try {
    const body = await readBody(req, deps.maxBodyBytes, deps.clientBodyTimeoutMs);
    plan = await deps.pipeline.evaluate({
      listener: ctx.listener,
      clientAddress: req.socket.remoteAddress ?? "",
      identity: ctx.identity,
      method: req.method ?? "",
      url: ctx.url,
      headers: joinHeaders(req),
      rawHeaders: req.rawHeaders,
      body,
      tunnelAuthority: ctx.tunnelAuthority,
      connection: req.socket,
    });
  } catch (error) {
    res.once("finish", decided).once("close", decided);
    sendRefusal(res, error instanceof ProxyRefusal ? error : internalRefusal(deps.log, error));
    return;
  }
  decided();
  // Closed by a kill switch while it was being decided: nothing is forwarded.
  if (req.socket.destroyed) return;
  await forwardPlan(deps, plan, res);
}

async function forwardPlan(deps: HandlerDeps, plan: ForwardPlan, res: ServerResponse): Promise<void> {
  const { request, destination } = plan;
  // Offered only for the exact service host, scheme and port the request was decided for, and
  // injected only if it serves every action, each inside the task's scope (lib/vault/binding.ts).
  const stored = deps.credentials().get(serviceKey(request.scheme, request.host, request.port));
  const { credential, withheld } = selectCredential(stored, plan.actions, plan.auth.scope);
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
  // Echoed secrets can only be found in bodies we can read.
  if (credential) {
    headers["accept-encoding"] = "identity";
    deps.onCredentialUsed?.(credential.credentialId);
  }
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
  });
  let status = 0;
  try {
    const upstream = await deps.forwarder.forward(request, destination, headers, abort.signal);
    status = upstream.statusCode;
    const secrets = credential?.secretForms ?? [];
    const encoding = String(upstream.headers["content-encoding"] ?? "identity").toLowerCase();
    if (credential && encoding !== "identity") {
      upstream.body.destroy();
      throw new ProxyRefusal("bad_gateway", "upstream_encoded_body", "the upstream compressed a response that must be checked for echoed secrets");
    }
    const out = downstreamHeaders(upstream.headers);
    if (secrets.length) {
      for (const [k, v] of Object.entries(out)) out[k] = Array.isArray(v) ? v.map((x) => redactHeaderValue(x, secrets)) : redactHeaderValue(v, secrets);
    }
    const length = upstream.headers["content-length"];
    if (typeof length === "string") out["content-length"] = length;
    out["x-bulkhead-decision"] = plan.decision === "hold" ? "approved" : "allow";
    out["x-bulkhead-event"] = plan.eventId;
    res.writeHead(status, out);
    const body = secrets.length ? upstream.body.pipe(new SecretRedactor(secrets)) : upstream.body;
    await new Promise<void>((resolve) => {
      body.on("error", () => {
        res.destroy();
        resolve();
      });
      res.on("close", resolve);
      body.pipe(res);
    });
  } catch (error) {
    sendRefusal(res, error instanceof ProxyRefusal ? error : internalRefusal(deps.log, error));
  } finally {
    const seconds = Number(process.hrtime.bigint() - plan.startedAt) / 1e9;
    deps.onForwarded?.(status, seconds);
    // The decision was recorded before forwarding; the outcome follows without holding the response.
    void deps.audit
      .record({
        type: "proxy.completed",
        actorType: "agent",
        actorId: plan.auth.agentId,
        agentId: plan.auth.agentId,
        taskId: plan.auth.taskId,
        outcome: status ? "forwarded" : "failed",
        effect: plan.effect,
        reason: status ? `upstream answered ${status}` : "upstream failed",
        ruleId: null,
        data: { eventId: `${plan.eventId}:completed`, decisionEventId: plan.eventId, upstreamStatus: status, durationMs: Math.round(seconds * 1000), credential: credential?.name ?? null, ...(withheld ? { credentialWithheld: withheld } : {}) },
      })
      .catch((e: unknown) => deps.log.warn({ err: String(e) }, "completion event could not be recorded"));
  }
}

function internalRefusal(log: Logger, error: unknown): ProxyRefusal {
  log.error({ err: error instanceof Error ? error.stack : String(error) }, "unexpected error in the request path");
  return new ProxyRefusal("bad_gateway", "internal_error", "the proxy failed to handle the request");
}
