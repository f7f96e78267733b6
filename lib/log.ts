import pino, { type Logger, type LoggerOptions } from "pino";

const REDACT = { paths: ["*.password", "*.secret", "*.token", "*.authorization", "*.headers.authorization", "*.headers[\"proxy-authorization\"]"], censor: "[redacted]" };

/** Each logger's twin without the redaction walk, writing to the same stream (see `withoutRedaction`). */
const twins = new WeakMap<Logger, Logger>();

/** How long a line may wait in a buffered logger's memory before it is written. */
export const LOG_FLUSH_MS = 100;
const BUFFER_BYTES = 4096;

/**
 * Standard output written in batches: a write (a system call from the thread pool) once 4 KiB of
 * lines are waiting, or every LOG_FLUSH_MS, instead of one per line. For the proxy worker, which
 * writes a decision line per request (one write per request measured ~3 % of its CPU at 1k
 * requests/s). On exit (including `process.exit` after a fatal error) what is buffered is written
 * synchronously, as pino does for its own asynchronous destination; a SIGKILL loses at most the
 * last LOG_FLUSH_MS of lines, which are operational logs (the audit log holds every decision).
 */
function bufferedStdout(): pino.DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, minLength: BUFFER_BYTES });
  const timer = setInterval(() => {
    // `_len` (bytes waiting) is sonic-boom's own; if a version drops it, flush every time anyway.
    const state = stream as unknown as { _len?: number; destroyed?: boolean };
    if (!state.destroyed && (state._len === undefined || state._len > 0)) stream.flush();
  }, LOG_FLUSH_MS);
  timer.unref();
  stream.on("close", () => clearInterval(timer));
  return stream;
}

/**
 * Structured JSON logs (one object per line), the same shape in the app, worker and CLI. With
 * `bufferedStdout`, lines go to standard output in batches (see `bufferedStdout`).
 */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? "info", o: { bufferedStdout?: boolean } = {}): Logger {
  const options: LoggerOptions = { name, level, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime };
  const log = o.bufferedStdout ? pino({ ...options, redact: REDACT }, bufferedStdout()) : pino({ ...options, redact: REDACT });
  const stream = (log as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym];
  if (stream) twins.set(log, pino(options, stream));
  return log;
}

/**
 * The same logger without the redaction of secret-named keys, for lines whose every field Bulkhead
 * builds itself and that can never hold such a key: the decision log line (flat fields, escaped
 * strings, arrays of strings). Checking every line's keys against the redaction paths cost ~5 % of
 * the worker's CPU at 1k requests/s on `bulkhead start`, for nothing, since the line writes one per
 * request. Same stream (so lines stay in order), same level; a logger this module did not create
 * (a child, a test's) is returned as it is, redaction and all.
 */
export function withoutRedaction(log: Logger): Logger {
  const twin = twins.get(log);
  if (!twin) return log;
  if (twin.level !== log.level) twin.level = log.level;
  return twin;
}
export type { Logger };
