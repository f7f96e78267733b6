import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Dispatcher } from "undici";
import { ProxyRefusal } from "./errors";
import type { StreamRedaction } from "./redact";

/** How an exchange with the upstream ended. */
export interface RelayOutcome {
  /** The upstream's status (0: it never answered). */
  status: number;
  /**
   * Why nothing (or not all) could be answered: set when the upstream failed or its answer was
   * refused before anything was sent to the client, so the caller answers with it. Once the
   * response has started, a failure cuts the client's connection instead and this stays null.
   */
  failure: ProxyRefusal | null;
  /**
   * What cut an answer that had started (the upstream's side failed or timed out mid-body, or the
   * client went away): its refusal code, for the completion's record. Null when it was whole.
   */
  cut: string | null;
}

/**
 * Relays one upstream response to the client as undici delivers it: the upstream's head goes
 * through `head` (which turns it into the client's headers, or refuses it with a ProxyRefusal),
 * then each chunk of its body is written to the client's response as it arrives, redacted on
 * the way when a redaction is given, with back-pressure: while the client's side is full the
 * upstream connection is paused, and resumed when it drains.
 *
 * This is an undici dispatch handler, not a stream pipe: undici's `request()` wraps every
 * response body in a Readable that is then piped, a stream and half a dozen listeners per
 * request for what is one write per chunk here.
 *
 * `done` resolves once it is over: every byte written, or either side failed or went away, in
 * which case the other is ended too (the client sees a cut connection, never a shortened body
 * passed off as whole; the upstream request is aborted). Never rejects.
 */
export class ResponseRelay implements Dispatcher.DispatchHandler {
  readonly done: Promise<RelayOutcome>;
  private settle!: (outcome: RelayOutcome) => void;
  private controller: Dispatcher.DispatchController | null = null;
  private status = 0;
  private cut: string | null = null;
  /** Armed from the request's dispatch (finalHeadBy) until the final head comes. */
  private headTimer: NodeJS.Timeout | null = null;
  private over = false;
  /** Any of the upstream's body has arrived. */
  private wroteBody = false;
  /**
   * The client's head, kept until the first byte of the body (or the end) goes out with it, as
   * Node would have sent it anyway: an upstream answer that turns out broken before then (a head
   * followed by bad framing in the same packet) is still answered with a 502, not a cut
   * connection under a head that never left.
   */
  private pendingHead: { status: number; headers: OutgoingHttpHeaders } | null = null;
  private draining = false;
  /** Armed while the client's side is full (the upstream paused); cleared when it drains. */
  private stallTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly res: ServerResponse,
    /** The client's connection: a pipelined request whose turn never came only sees this close. */
    private readonly connection: Duplex,
    /** The client's status line headers from the upstream's; throws a ProxyRefusal to refuse the answer. */
    private readonly head: (status: number, headers: IncomingHttpHeaders) => OutgoingHttpHeaders,
    private readonly redaction: StreamRedaction | null,
    /**
     * How long the client may take nothing while the upstream is paused for it. A paused
     * upstream is not timed by undici (its body timeout stops while paused), so a client that
     * never reads held its upstream connection, one of the pool's few for that origin, for ever:
     * enough of them left every other task's request to that service waiting in the pool's queue.
     */
    private readonly stallMs: number = Infinity,
  ) {
    this.done = new Promise((resolve) => (this.settle = resolve));
    res.on("close", this.clientClosed).on("finish", this.finished).on("error", this.clientClosed);
    if (connection.destroyed) this.clientClosed();
    else connection.once("close", this.clientClosed);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Gone before the request got a connection: it is never sent.
    if (this.over) controller.abort(clientGone());
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (this.over) return;
    // 1xx informational answers (103 Early Hints...) are not the response: the final head's
    // deadline (finalHeadBy) still runs.
    if (status < 200) return;
    this.status = status;
    if (this.headTimer !== null) clearTimeout(this.headTimer);
    this.headTimer = null;
    try {
      // HTTP's status codes are three digits from 100 to 599 (RFC 9110 §15); Node would relay 600-999.
      if (status > 599) throw new ProxyRefusal("bad_gateway", "upstream_bad_response", `the upstream answered with status ${status}, which is not an HTTP status code`);
      this.pendingHead = { status, headers: this.head(status, headers) };
      // Node sends a head with the first byte of the body: an event stream's client would wait
      // for its first event (or, with echoed secrets redacted, for more) to learn it is open.
      if (isEventStream(headers["content-type"])) {
        this.sendHead();
        this.res.flushHeaders();
      }
    } catch (error) {
      const refusal = error instanceof ProxyRefusal ? error : new ProxyRefusal("bad_gateway", "upstream_bad_response", "the upstream's answer could not be passed on");
      this.end(this.res.headersSent ? null : refusal);
      controller.abort(refusal);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.over) return;
    this.wroteBody = true;
    let out = chunk;
    if (this.redaction) {
      out = this.redaction.push(chunk);
      if (out.length === 0) return;
    }
    this.sendHead();
    // Node's response corks the client's socket until the end of this tick on a write, so a
    // body that arrives whole (its data and its end in one read of the upstream's socket) leaves
    // in one write with its held-back tail and its end; a stream that goes on is sent as it comes.
    if (!this.res.write(out)) {
      controller.pause();
      if (!this.draining) {
        this.draining = true;
        this.res.on("drain", this.drained);
      }
      if (this.stallTimer === null && Number.isFinite(this.stallMs)) {
        this.stallTimer = setTimeout(this.stalled, this.stallMs);
        this.stallTimer.unref();
      }
    }
  }

  onResponseEnd(): void {
    if (this.over) return;
    this.sendHead();
    const rest = this.redaction?.end();
    if (rest && rest.length > 0) this.res.end(rest);
    else this.res.end();
    // Over once the client's side has it all ("finish") or has gone away ("close").
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.over) return;
    if (this.pendingHead) {
      // A 204 or 304 has no body whatever its Content-Length says (below): it is whole.
      if ((this.status === 204 || this.status === 304) && (error as { code?: string }).code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH") {
        this.sendHead();
        this.res.end();
        return;
      }
      // Nothing has left for the client yet: it gets the refusal, not a cut connection.
      this.pendingHead = null;
      return this.end(error instanceof ProxyRefusal ? error : upstreamRefusal(error));
    }
    if (this.res.headersSent) {
      // A 204 or 304 has no body whatever its Content-Length says (for a 304 it is the size of
      // the representation, which RFC 9110 §8.6 allows): undici still counts the body it did not
      // get as missing. The answer is whole: it ends as it is.
      if (!this.wroteBody && (this.status === 204 || this.status === 304) && (error as { code?: string }).code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH") {
        this.res.end();
        return;
      }
      // Cut short (upstream reset, body timeout): the client sees a cut connection.
      // A body timeout is a timeout; anything else this late is the upstream closing or resetting.
      const code = (error instanceof ProxyRefusal ? error : upstreamRefusal(error)).code;
      this.cut = code === "upstream_timeout" || code === "client_gone" ? code : "upstream_closed";
      this.res.destroy();
      return this.end(null);
    }
    this.end(error instanceof ProxyRefusal ? error : upstreamRefusal(error));
  }

  /**
   * Sets when the final answer's head must have come (a performance.now() time), whatever 1xx
   * answers precede it, and however long the request waits for a pooled connection first.
   */
  finalHeadBy(due: number): void {
    if (this.headTimer !== null) clearTimeout(this.headTimer);
    this.headTimer = null;
    if (due === Infinity || this.over) return;
    this.headTimer = setTimeout(() => this.headDeadline(), Math.max(0, due - performance.now()));
    this.headTimer.unref();
  }

  /**
   * The final answer's head did not come in time. undici's headers timeout does not cover it
   * all: it starts only once the request is written to a connection, so a request waiting in
   * the pool's queue (every connection to that origin busy, e.g. with event streams) waited for
   * ever; and an informational answer (1xx) restarts it, so an upstream sending `102 Processing`
   * every few seconds held the request (and the client's connection) for ever. Ended as an
   * upstream timeout unless the final head has come; a request still queued is then never sent
   * (onRequestStart).
   */
  private headDeadline(): void {
    if (this.over || this.status !== 0) return;
    const refusal = new ProxyRefusal("timeout", "upstream_timeout", "the upstream did not answer in time");
    this.end(refusal);
    this.controller?.abort(refusal);
  }

  private readonly drained = (): void => {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.controller?.resume();
  };

  /**
   * The client took nothing for `stallMs` while the upstream waited for it: both sides are cut
   * (the upstream connection is released; the client sees a cut connection, never a shortened
   * body passed off as whole), recorded as `client_timeout`.
   */
  private readonly stalled = (): void => {
    this.stallTimer = null;
    if (this.over) return;
    const refusal = new ProxyRefusal("client_timeout", "client_timeout", "the client did not take the answer in time");
    this.cut = "client_timeout";
    this.end(null);
    this.controller?.abort(refusal);
    this.res.destroy();
  };

  private readonly finished = (): void => this.end(null);

  private readonly clientClosed = (): void => {
    if (this.over || this.res.writableFinished) return;
    this.controller?.abort(clientGone());
    this.res.destroy();
    // Nothing was answered: recorded as such (the response is already gone, nothing is sent).
    if (this.res.headersSent) this.cut = "client_gone";
    this.end(this.res.headersSent ? null : clientGone());
  };

  /** Writes the kept head (once); the body or the end goes out with it. */
  private sendHead(): void {
    const head = this.pendingHead;
    if (!head) return;
    this.pendingHead = null;
    this.res.writeHead(head.status, head.headers);
  }

  private end(failure: ProxyRefusal | null): void {
    if (this.over) return;
    this.over = true;
    if (this.headTimer !== null) clearTimeout(this.headTimer);
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.res.off("close", this.clientClosed).off("finish", this.finished);
    // An error on the client's side after this is over (a late reset) still has this listener.
    this.connection.off("close", this.clientClosed);
    if (this.draining) this.res.off("drain", this.drained);
    this.settle({ status: this.status, failure, cut: this.cut });
  }
}

function isEventStream(type: string | string[] | undefined): boolean {
  return typeof type === "string" && type.trimStart().toLowerCase().startsWith("text/event-stream");
}

function clientGone(): ProxyRefusal {
  return new ProxyRefusal("bad_gateway", "client_gone", "the client went away");
}

/** What an undici error before the upstream's answer means for the client. */
export function upstreamRefusal(error: unknown): ProxyRefusal {
  const code = (error as { code?: string }).code ?? "";
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_CONNECT_TIMEOUT") {
    return new ProxyRefusal("timeout", "upstream_timeout", "the upstream did not answer in time");
  }
  if (code === "UND_ERR_ABORTED") return clientGone();
  // undici asserts that a status is at least 100: "HTTP/1.1 000" or "099" fails its assertion.
  if (code === "ERR_ASSERTION") return new ProxyRefusal("bad_gateway", "upstream_bad_response", "the upstream's answer was not valid HTTP (its status is not an HTTP status code)");
  // It answered, but not with HTTP that can be relayed: a head over the limits, a malformed head,
  // a body whose length disagrees with its head.
  const name = (error as { name?: string }).name;
  // A `101 Switching Protocols` to a request that asked for no upgrade (undici: "bad upgrade"):
  // the upstream answered, trying to turn the connection into something Bulkhead would not inspect.
  // A `100 Continue` nobody asked for (no Expect is sent), or an answer with no request waiting
  // for it, is a "bad response": the upstream answered too, just not as HTTP allows.
  const badAnswer = code === "UND_ERR_SOCKET" && error instanceof Error && (error.message === "bad upgrade" || error.message === "bad response");
  if (badAnswer || code === "UND_ERR_HEADERS_OVERFLOW" || code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH" || code.startsWith("HPE_") || name === "HTTPParserError") {
    return new ProxyRefusal("bad_gateway", "upstream_bad_response", "the upstream's answer was not valid HTTP or exceeded the proxy's limits");
  }
  if (code === "connect_timeout") return new ProxyRefusal("timeout", "upstream_timeout", "the upstream did not accept the connection in time");
  if (code === "dial_refused") return new ProxyRefusal("bad_gateway", "dial_refused", "the proxy refused to dial an unchecked destination");
  const message = error instanceof Error ? error.message : String(error);
  if (/certificate|self.signed|unable to verify|CERT_|altnames/i.test(message)) {
    return new ProxyRefusal("bad_gateway", "upstream_tls", "the upstream's TLS certificate could not be verified");
  }
  return new ProxyRefusal("bad_gateway", "upstream_unreachable", "the upstream could not be reached");
}
