import { recordedTarget } from "@/lib/semantics/canonical";
import { randomUUID } from "node:crypto";
import http from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "@/lib/log";
import { failBody } from "./body";
import { proxyAuthorizationOf, tokenIdentity } from "./credentials";
import { logDecision, logSafe, refusalLine } from "./decision-log";
import { connectionAuth, type ConnectionRegistry } from "./connections";
import { ProxyRefusal, refusalResponse } from "./errors";
import { handleProxyRequest, refuseRequest, type HandlerDeps } from "./handler";
import type { RefusalAudit } from "./refusal-audit";
import type { SourceShare } from "./source-share";
import type { ListenerKind } from "./types";

export interface ListenerLimits {
  /** Larger request heads get 431 from Node's parser before anything is buffered. */
  maxHeaderBytes: number;
  /** Whole request (head and body) must arrive within this. */
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** What every listener needs to refuse: somewhere to audit, somewhere to log. */
export interface ListenerDeps {
  log: Logger;
  refusals: RefusalAudit;
  /** Whose a connection is once it has authenticated: its refusals are audited under that task. */
  connections?: Pick<ConnectionRegistry, "ownerOf">;
}

/**
 * How long a refusal written on a raw socket may take to leave before the socket is destroyed.
 * A refusal is a few hundred bytes: only a connection that cannot take them waits this long.
 */
export const RAW_REFUSAL_GRACE_MS = 5_000;

/**
 * Writes a refusal on a raw socket (CONNECT, upgrades, parse errors, timeouts) and closes it. The
 * socket is destroyed if the refusal has not left within RAW_REFUSAL_GRACE_MS: `end()` waits for
 * the write, and a connection that cannot take it never closed. A TLS layer whose client attempted
 * a renegotiation, which is refused, can no longer write at all: a tunnel's 408 then stayed
 * unsent, and the connection open (half-closed once the client left) until its maximum lifetime.
 */
export function writeRawRefusal(socket: Duplex, refusal: ProxyRefusal): void {
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const r = refusalResponse(refusal);
  const head = [`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status] ?? ""}`, ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`)].join("\r\n");
  const stuck = setTimeout(() => socket.destroy(), RAW_REFUSAL_GRACE_MS);
  stuck.unref();
  socket.once("close", () => clearTimeout(stuck));
  socket.end(`${head}\r\n\r\n${r.body}`);
}

/**
 * Refuses on a raw socket: audits the refusal (aggregated in floods), writes it if the socket can
 * still take it, and logs the decision line. `data` names who and what (agent-controlled values
 * are cut short here and escaped in the log).
 */
export async function refuseRaw(deps: ListenerDeps, socket: Duplex, refusal: ProxyRefusal, data: { listener: ListenerKind; client: string; method?: string; url?: string; [field: string]: unknown }, respond = true): Promise<void> {
  const source = { eventId: randomUUID(), ...data, method: data.method?.slice(0, 32), url: data.url === undefined ? undefined : recordedTarget(data.url) };
  const auth = connectionAuth(deps, socket);
  refusal.context = { ...source, ...auth, ...refusal.context };
  await deps.refusals.record(refusal, { data: source, auth });
  if (respond) writeRawRefusal(socket, refusal);
  else socket.destroy();
  logDecision(deps.log, refusalLine(refusal, respond ? {} : { status: 0 }));
}

/** A refusal for an error Node's HTTP parser reported, or null for a client that just went away. */
function parserRefusal(code: string): ProxyRefusal | null {
  if (code === "HPE_HEADER_OVERFLOW") return new ProxyRefusal("headers_too_large", "headers_too_large", "request headers are too large");
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") return new ProxyRefusal("client_timeout", "client_timeout", "the request did not arrive in time");
  if (code.startsWith("HPE_")) return new ProxyRefusal("malformed", "http_parse_error", `the request could not be parsed (${code})`);
  return null; // ECONNRESET, EPIPE...: nothing to refuse
}

/**
 * HTTP/1.0 and HTTP/1.1 only. Node's parser also takes a request line that says `HTTP/0.9` or
 * `HTTP/2.0`, headers and all; such a request was judged and forwarded as HTTP/1.1 (and an
 * HTTP/0.9 one needed no Host). HTTP/0.9 has no version token and no headers, and HTTP/2 is not
 * written this way: neither is a request anyone meant, so it is refused rather than guessed at.
 * Nor is an HTTP/1.0 request that names a transfer coding.
 */
function versionRefusal(req: http.IncomingMessage): ProxyRefusal | null {
  if (req.httpVersionMajor !== 1 || (req.httpVersionMinor !== 0 && req.httpVersionMinor !== 1)) {
    return new ProxyRefusal("malformed", "unsupported_http_version", `HTTP/${req.httpVersion.slice(0, 8)} is not accepted: send HTTP/1.1 (or HTTP/1.0)`);
  }
  // HTTP/1.0 has no transfer codings: a recipient must treat such a message's framing as faulty
  // (RFC 9112 §6.1). Node de-chunked it, and a keep-alive connection read its next request from
  // wherever that framing said the body ended.
  if (req.httpVersionMinor === 0 && req.headers["transfer-encoding"] !== undefined) {
    return new ProxyRefusal("malformed", "unsupported_transfer_encoding", "Transfer-Encoding on an HTTP/1.0 request: its framing cannot be trusted; send HTTP/1.1, or a Content-Length");
  }
  return null;
}

/**
 * A connection must bring its first request head within `ms` of opening. Node's headers timeout
 * only starts with a request's first byte, so a connection that sends nothing at all (and a
 * tunnel or transparent connection handed to an inner server that then goes quiet) was never
 * timed out: enough of them fill the listener's connection cap, before any authentication. On
 * expiry the connection gets what a slow head gets (408 `client_timeout`, audited through the
 * server's clientError path). From its first request on, Node's own timeouts apply (the request
 * timeout, then the keep-alive timeout between requests).
 */
function awaitFirstRequest(server: http.Server, ms: number): void {
  const timers = new WeakMap<object, NodeJS.Timeout>();
  const arrived = (socket: object) => {
    const timer = timers.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    timers.delete(socket);
  };
  server.on("connection", (socket: Duplex) => {
    const timer = setTimeout(() => {
      timers.delete(socket);
      if (socket.destroyed) return;
      server.emit("clientError", Object.assign(new Error("no request arrived in time"), { code: "ERR_HTTP_REQUEST_TIMEOUT" }), socket);
    }, ms);
    timer.unref();
    timers.set(socket, timer);
    socket.once("close", () => arrived(socket));
  });
  const onHead = (req: http.IncomingMessage) => arrived(req.socket);
  for (const event of ["request", "checkContinue", "checkExpectation", "connect", "upgrade"]) server.on(event, onHead);
  server.on("clientError", (_error: unknown, socket: Duplex) => arrived(socket));
}

/**
 * Common server plumbing for every listener: strict limits, parse errors answered with a clear
 * status (431 for oversized heads, 408 for slow clients, 400 otherwise) and audited, protocol
 * upgrades refused (no uninspected tunnels) and audited. Each request on a keep-alive
 * connection goes through the handler on its own.
 *
 * CONNECT goes to `onConnect`; a server given none (inside an intercepted tunnel, the transparent
 * listeners) refuses it, audited. Node hands a CONNECT's socket to whoever listens for the event
 * and stops parsing and timing it: with nobody answering (the head-timeout hook listens too), the
 * connection stayed open, unanswered and unaudited, for as long as the client liked.
 */
export function createProxyServer(
  limits: ListenerLimits,
  deps: ListenerDeps,
  listener: ListenerKind,
  onRequest: http.RequestListener,
  onConnect?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void,
): http.Server {
  // RFC 9112 §3.2: an HTTP/1.1 request must carry Host (HTTP/1.0 need not).
  function withHost(req: http.IncomingMessage, res: http.ServerResponse): void {
    const version = versionRefusal(req);
    if (version) {
      refuseRequest(deps, req, res, version, listener).catch(() => res.destroy());
      return;
    }
    if (req.headers.host === undefined && (req.httpVersionMajor > 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1))) {
      const refusal = new ProxyRefusal("malformed", "host_missing", "an HTTP/1.1 request must carry a Host header");
      refuseRequest(deps, req, res, refusal, listener).catch(() => res.destroy());
      return;
    }
    onRequest(req, res);
  }
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often slow clients are checked against the timeouts above.
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
      // Header names and values are validated strictly; lenient parsing enables smuggling.
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
      // An HTTP/1.1 request without Host is refused below, audited: Node's own check answered a
      // bare 400 itself, with no reason and no audit event.
      requireHostHeader: false,
    },
    withHost,
  );
  // Every field of a head is kept: Node keeps only the first 2000 in `req.headers` by default and
  // drops the rest without a word, so a second Host or Content-Type after them escaped the
  // duplicate check, and a Content-Length after them made the body vanish (judged and forwarded
  // as none). The head's size is bounded by `maxHeaderSize` (431), which bounds the count too.
  server.maxHeadersCount = 0;
  // A client that sends its whole request and then shuts down its sending side (a half-close,
  // `shutdown(SHUT_WR)`, as some clients do once they have nothing more to send) still gets the
  // answer: by default Node aborts the request in flight on that FIN, so the request was
  // forwarded, ran upstream, and was recorded as `client_gone` with nothing answered. The
  // connection is closed once the answers of the requests it has already sent are written.
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // `Expect: 100-continue`: Node would answer "100 Continue" before anyone looked at the request;
  // the handler sends it only once the client is authenticated (handler.ts, readBody).
  // Node takes any value that contains the word for it (`100-continue, foo`, `x;100-continue`),
  // which is then an expectation beside it that nobody meets: only the bare value is accepted.
  server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.headers.expect?.trim().toLowerCase() === "100-continue") withHost(req, res);
    else refuseExpectation(req, res);
  });
  // Any other expectation: Node would answer 417 on its own, unaudited; refused here like any
  // other malformed request (a listener for this event replaces Node's answer).
  const refuseExpectation = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const refusal = new ProxyRefusal("malformed", "expectation_unsupported", "the only expectation Bulkhead accepts is 100-continue");
    refuseRequest(deps, req, res, refusal, listener).catch(() => res.destroy());
  };
  server.on("checkExpectation", refuseExpectation);
  awaitFirstRequest(server, limits.headersTimeoutMs);
  server.on("clientError", (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
    const code = error.code ?? "";
    const inFlight = (socket as Duplex & { _httpMessage?: http.ServerResponse | null })._httpMessage ?? null;
    // Bytes after a request that closes its connection (HTTP/1.0 without keep-alive, or
    // `Connection: close`): RFC 9112 §9.6, they are not processed, and that request is still
    // answered; the connection closes once its response is out (Node ends it then). Node's parser
    // reports them as an error, which used to be taken for the request's own: the connection was
    // destroyed while that request was being decided or forwarded, so an allowed request got no
    // answer (and an upstream that had acted on it was cut off), and a parse error was audited
    // for a request that had parsed. Nothing in them is a request: nothing to judge or refuse.
    if (code === "HPE_CLOSED_CONNECTION") {
      if (inFlight === null || inFlight.writableFinished) socket.destroy();
      return;
    }
    const refusal = parserRefusal(code);
    if (!refusal) {
      socket.destroy();
      return;
    }
    // A request whose body failed to parse (bad chunking, an unknown transfer coding) or did not
    // arrive in time has had nothing answered yet: its own handler refuses it, once, audited as
    // its task's (it used to be audited here without the task, and then again by the handler as
    // an unreadable body "aborted", when this closed the connection under it). Nothing of it was
    // forwarded, since a body is read whole first. That request is the one the parser was reading:
    // the answer in flight may belong to a request pipelined before it, whose turn comes first.
    const parsing = (socket as Duplex & { parser?: { incoming?: http.IncomingMessage | null } | null }).parser?.incoming ?? null;
    if (parsing !== null && !parsing.complete) {
      failBody(parsing, refusal);
      return;
    }
    if (inFlight !== null && !inFlight.headersSent && inFlight.req?.complete === false) {
      failBody(inFlight.req, refusal);
      return;
    }
    const sample = error.rawPacket ? logSafe(error.rawPacket.subarray(0, 128).toString("latin1"), 128) : undefined;
    const client = (socket as net.Socket).remoteAddress ?? "";
    const refuse = () => refuseRaw(deps, socket, refusal, { listener, client, sample }, socket.writable && !socket.destroyed).catch(() => socket.destroy());
    if (inFlight === null) {
      void refuse();
      return;
    }
    // Requests before the malformed bytes are still being decided, held or answered: they are
    // answered first, in order, and the 400 follows on the same connection (unless an answer
    // before it closed the connection: bytes after it are not processed, RFC 9112 §9.6; the
    // refusal is still audited). It used to destroy the connection at once: an allowed request
    // before it was never forwarded nor answered, and a refusal never reached its client.
    let refused = false;
    const once = () => {
      if (refused) return;
      refused = true;
      socket.off("close", once);
      void refuse();
    };
    socket.once("close", once);
    afterEarlierAnswers(socket, once);
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex) => {
    socket.on("error", () => socket.destroy());
    afterEarlierAnswers(socket, () => {
      const refusal = new ProxyRefusal("denied", "upgrade_refused", "protocol upgrades are not allowed through Bulkhead");
      refuseRaw(deps, socket, refusal, { listener, client: req.socket.remoteAddress ?? "", method: req.method, url: req.url, upgrade: req.headers.upgrade?.slice(0, 64) }).catch(() => socket.destroy());
    });
  });
  const connect =
    onConnect ??
    ((req: http.IncomingMessage, socket: Duplex) => {
      const refusal = new ProxyRefusal("malformed", "unsupported_method", "CONNECT is accepted by the explicit proxy listener only, not inside a tunnel nor on a transparent listener: send the request itself");
      refuseRaw(deps, socket, refusal, { listener, client: req.socket.remoteAddress ?? "", method: req.method, url: req.url }).catch(() => socket.destroy());
    });
  server.on("connect", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node's HTTP server has removed its own handlers from this socket: ours come first.
    socket.on("error", () => socket.destroy());
    afterEarlierAnswers(socket, () => {
      const version = versionRefusal(req);
      if (version) refuseRaw(deps, socket, version, { listener, client: req.socket.remoteAddress ?? "", method: req.method, url: req.url }).catch(() => socket.destroy());
      else connect(req, socket, head);
    });
  });
  return server;
}

/**
 * Runs `then` once the answers to every request before a CONNECT or an upgrade on `socket` are
 * out: at once on a connection with nothing in flight. Node hands such a request's socket over as
 * soon as it is parsed, while requests pipelined before it may still be decided, held or
 * forwarded: whatever was written on the raw socket (the upgrade's refusal, a tunnel's `200
 * Connection Established`) went out ahead of their answers, which the client read as the answer
 * to its earlier request (and an earlier answer then landed inside the tunnel's TLS stream). Node
 * gives each waiting answer the socket when the one before it finishes (its own `finish` listener
 * runs first), so the socket's current answer is read again after each. A connection that closes
 * meanwhile never gets to `then`: like a pipelined request whose turn never came, nothing of it is
 * judged.
 */
export function afterEarlierAnswers(socket: Duplex, then: () => void): void {
  const current = () => (socket as Duplex & { _httpMessage?: http.ServerResponse | null })._httpMessage ?? null;
  const wait = (answer: http.ServerResponse | null): void => {
    if (socket.destroyed) return;
    if (answer === null || answer.writableFinished) return then();
    const next = () => {
      answer.off("finish", next).off("close", next);
      wait(current());
    };
    answer.once("finish", next).once("close", next);
  };
  const first = current();
  if (first === null || first.writableFinished || socket.destroyed) return then();
  wait(first);
}

/**
 * The explicit forward proxy: absolute-form HTTP requests and CONNECT, with the agent's task
 * token in Proxy-Authorization.
 */
export function createExplicitListener(
  deps: HandlerDeps & ListenerDeps,
  limits: ListenerLimits,
  onConnect: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void,
): http.Server {
  return createProxyServer(limits, deps, "explicit", (req, res) => {
    const target = req.url ?? "";
    if (!/^https?:\/\//i.test(target)) {
      const refusal = new ProxyRefusal("malformed", "not_absolute_form", "this is a forward proxy: send requests in absolute form (http://host/path)");
      refuseRequest(deps, req, res, refusal, "explicit").catch(() => res.destroy());
      return;
    }
    void handleProxyRequest(deps, req, res, {
      listener: "explicit",
      identity: tokenIdentity(proxyAuthorizationOf(req)),
      url: target,
    });
  }, onConnect);
}

/**
 * Listener-level protection shared by every accepting server: a connection cap (connections
 * beyond it are dropped by Node and audited here), and accept errors (EMFILE and the like)
 * logged instead of crashing the process.
 */
export function guardListener(server: net.Server, deps: ListenerDeps, listener: ListenerKind, maxConnections: number, share?: SourceShareGuard): void {
  server.maxConnections = maxConnections;
  // Every connection counts for its source until it authenticates (source-share.ts).
  if (share) server.on("connection", (socket: net.Socket) => admitBySource(share, deps, listener, socket));
  server.on("drop", (data?: { remoteAddress?: string }) => {
    const refusal = new ProxyRefusal("rate_limited", "connection_limit", `the listener already holds ${maxConnections} connections`);
    const source = { eventId: randomUUID(), listener, client: data?.remoteAddress ?? "" };
    refusal.context = source;
    deps.refusals
      .record(refusal, { data: source, auth: null })
      .then(() => logDecision(deps.log, refusalLine(refusal, { status: 0 })))
      .catch(() => undefined);
  });
  server.on("error", (error: Error) => deps.log.error({ err: error.message, listener }, "listener error"));
}

/** A listener's per-source share, and what to count the connections it closes with (metrics). */
export interface SourceShareGuard {
  share: SourceShare;
  onEvicted?: (listener: ListenerKind) => void;
}

/**
 * Counts `socket` for its source. A source that already holds its share loses its oldest
 * connection that has not authenticated, closed at once, audited as `source_connection_limit`
 * (aggregated in floods, by source: refusal-audit.ts) and counted; the new connection is kept, so
 * idle connections cannot keep a newer client behind the same address out. Only the closings
 * recorded individually get a decision log line, so a flood does not flood the log either.
 */
export function admitBySource(guard: SourceShareGuard, deps: ListenerDeps, listener: ListenerKind, socket: net.Socket, address = socket.remoteAddress ?? ""): void {
  const admission = guard.share.admit(socket, address);
  if (admission.evicted === null) return;
  admission.evicted.destroy();
  guard.onEvicted?.(listener);
  const refusal = new ProxyRefusal(
    "rate_limited",
    "source_connection_limit",
    `this address held ${admission.open} connections that had not authenticated (the limit is ${guard.share.perSource}, BULKHEAD_SOURCE_MAX_CONNECTIONS): its oldest was closed to make room for a newer one; send the request as soon as a connection is open`,
  );
  const source = { eventId: randomUUID(), listener, client: address, sourceKey: admission.key };
  refusal.context = source;
  deps.refusals
    .record(refusal, { data: source, auth: null })
    .then(() => {
      if (!refusal.extra.auditAggregated) logDecision(deps.log, refusalLine(refusal, { status: 0 }));
    })
    .catch(() => undefined);
}
