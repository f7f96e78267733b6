import path from "node:path";
import { z } from "zod";
import { optionalString, parseEnv } from "./env";

/**
 * Streaming the audit to a SIEM (docs/audit.md, "Streaming to a SIEM"); off unless
 * BULKHEAD_SIEM_URL is set. Run by the launcher.
 */
const schema = z.object({
  /** http(s)://… (JSON Lines POSTs) or syslog+tcp://host:port (RFC 5424). */
  BULKHEAD_SIEM_URL: optionalString
    .refine((v) => v === undefined || /^(https?:\/\/|syslog\+tcp:\/\/[^/:]+:\d+\/?$)/.test(v), "must be an http(s):// URL or syslog+tcp://HOST:PORT")
    // fetch refuses a URL with credentials, and its refusal repeats the URL (password and all)
    // into the launcher's output and siem-status.json, which the Audit page shows.
    .refine((v) => v === undefined || !/^https?:\/\/[^/?#]*@/i.test(v), "must not contain a user name or password (put the SIEM's token in the path or query it documents)"),
  BULKHEAD_SIEM_BATCH_SIZE: z.coerce.number({ error: "must be a number" }).int("must be a whole number").min(1, "must be at least 1").max(10_000, "must be at most 10000").default(500),
  BULKHEAD_SIEM_INTERVAL_MS: z.coerce.number({ error: "must be a number" }).int("must be a whole number").min(50, "must be at least 50").max(600_000, "must be at most 600000").default(1000),
  /** Last seq the SIEM accepted; default <data dir>/siem-cursor.json. */
  BULKHEAD_SIEM_CURSOR_FILE: optionalString,
});

export type SiemConfig = { kind: "http"; url: string } | { kind: "syslog"; host: string; port: number };

export function loadSiemConfig(dataDir: string, source: Record<string, string | undefined> = process.env): (SiemConfig & { batchSize: number; intervalMs: number; cursorFile: string }) | null {
  const env = parseEnv(schema, source);
  if (!env.BULKHEAD_SIEM_URL) return null;
  const common = { batchSize: env.BULKHEAD_SIEM_BATCH_SIZE, intervalMs: env.BULKHEAD_SIEM_INTERVAL_MS, cursorFile: path.resolve(env.BULKHEAD_SIEM_CURSOR_FILE ?? path.join(dataDir, "siem-cursor.json")) };
  if (env.BULKHEAD_SIEM_URL.startsWith("syslog+tcp://")) {
    const u = new URL(env.BULKHEAD_SIEM_URL.replace(/^syslog\+tcp:/, "http:"));
    return { kind: "syslog", host: u.hostname, port: Number(u.port), ...common };
  }
  return { kind: "http", url: env.BULKHEAD_SIEM_URL, ...common };
}
