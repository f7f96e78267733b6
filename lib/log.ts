import pino, { type Logger } from "pino";

/** Structured JSON logs (one object per line), the same shape in the app, worker and CLI. */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ["*.password", "*.secret", "*.token", "*.authorization", "*.headers.authorization", "*.headers[\"proxy-authorization\"]"], censor: "[redacted]" },
  });
}
export type { Logger };
