import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import type { StreamRedaction } from "./redact";

/**
 * What ends a forwarded request early (its client went away): `abort()` once, "abort" emitted.
 * undici takes any EventEmitter with `aborted` as a request's signal, so this stands in for an
 * AbortController, whose AbortSignal is an EventTarget built and listened to through Node's
 * internals on every request (~2 % of the worker's CPU at 1k requests/s).
 */
export class Cancellation extends EventEmitter {
  aborted = false;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit("abort");
  }
}

/**
 * Streams an upstream response body to the client (redacted on the way when a redaction is
 * given), with back-pressure, and resolves once it is over: every byte written, or either side
 * failed or went away, in which case both are destroyed (the client sees a cut connection, never
 * a shortened body passed off as whole). Never rejects, and leaves no error without a listener.
 *
 * This is what `stream.pipeline` does for the request path, by hand: Node 20's pipeline creates
 * an AbortController per call and aborts it when the pipeline finishes, which builds an AbortError
 * and a DOMException for every request (about 9 % of the worker's CPU at saturation, plus the
 * garbage: docs/benchmarks.md). `pipe` with explicit error and close handling costs none of that;
 * a redacted body is fed through the redaction by a `data` listener that pauses the source while
 * the client's side is full, the same back-pressure `pipe` applies.
 */
export function relay(source: Readable, sink: ServerResponse, redaction: StreamRedaction | null, signal: Cancellation): Promise<void> {
  return new Promise<void>((resolve) => {
    let over = false;
    let flush: NodeJS.Immediate | null = null;
    const end = () => {
      if (over) return;
      over = true;
      uncork();
      source.off("error", fail).off("close", sourceClosed);
      sink.off("error", fail).off("close", sinkClosed).off("finish", end);
      signal.off("abort", fail);
      if (redaction) {
        source.off("data", redacted).off("end", redactedEnd);
        sink.off("drain", drained);
      }
      resolve();
    };
    function fail(): void {
      if (over) return;
      source.destroy();
      sink.destroy();
      end();
    }
    // A body that closes before its end was cut short (upstream reset, body timeout).
    function sourceClosed(): void {
      if (!source.readableEnded) fail();
    }
    // The client's side closing before everything was written: the client went away.
    function sinkClosed(): void {
      if (sink.writableFinished) end();
      else fail();
    }
    function redacted(chunk: Buffer): void {
      const out = redaction!.push(chunk);
      if (out.length === 0) return;
      // Held in the socket until this turn of the event loop is over: a body that ends in the
      // same turn (a small response, read whole) then leaves with its end in one write, instead
      // of its redacted part in one and the held-back tail in another. A stream that goes on is
      // sent as it comes, one write per turn.
      if (!flush) {
        sink.cork();
        flush = setImmediate(uncork);
      }
      if (!sink.write(out)) source.pause();
    }
    function uncork(): void {
      if (!flush) return;
      clearImmediate(flush);
      flush = null;
      sink.uncork();
    }
    function drained(): void {
      source.resume();
    }
    function redactedEnd(): void {
      const rest = redaction!.end();
      // end() sends whatever the cork held, with the rest, in one write.
      if (flush) {
        clearImmediate(flush);
        flush = null;
      }
      if (rest.length > 0) sink.end(rest);
      else sink.end();
    }
    if (signal.aborted) return fail();
    // Errors after the relay is over (a late reset) still need a listener, or they would crash.
    source.on("error", noop);
    source.on("error", fail).on("close", sourceClosed);
    sink.on("error", fail).on("close", sinkClosed).on("finish", end);
    signal.once("abort", fail);
    if (redaction) {
      sink.on("drain", drained);
      source.on("end", redactedEnd).on("data", redacted);
    } else source.pipe(sink);
  });
}

function noop(): void {}
