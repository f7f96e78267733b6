import pino, { type Logger, type LoggerOptions } from "pino";

const REDACT = { paths: ["*.password", "*.secret", "*.token", "*.authorization", "*.headers.authorization", "*.headers[\"proxy-authorization\"]"], censor: "[redacted]" };

/** Each logger's twin without the redaction walk, writing to the same stream (see `withoutRedaction`). */
const twins = new WeakMap<Logger, Logger>();

/** Structured JSON logs (one object per line), the same shape in the app, worker and CLI. */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? "info"): Logger {
  const options: LoggerOptions = { name, level, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime };
  const log = pino({ ...options, redact: REDACT });
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
