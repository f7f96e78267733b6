/**
 * How far the SIEM is behind the audit log, measured the same way wherever it is shown: the
 * shipper's own status (lib/audit/siem/shipper.ts), and the worker's Prometheus metrics, which
 * read the shipper's cursor file and the database head at scrape time, so a scrape never reports
 * a figure older than the scrape.
 */
import { existsSync, readFileSync } from "node:fs";
import type { SiemConfig } from "@/lib/config/siem";
import { auditSql, type AuditDb } from "../sql";

export interface SiemCursor {
  /** The last seq the SIEM accepted (0 before the first batch). */
  seq: bigint;
  /** When that batch was accepted (null before the first batch). */
  at: Date | null;
}

export function readSiemCursor(file: string): SiemCursor {
  if (!existsSync(file)) return { seq: 0n, at: null };
  const parsed = JSON.parse(readFileSync(file, "utf8")) as { seq?: unknown; at?: unknown };
  if (typeof parsed.seq !== "string" || !/^\d+$/.test(parsed.seq)) throw new Error(`${file} is not a SIEM cursor`);
  const at = typeof parsed.at === "string" ? new Date(parsed.at) : null;
  return { seq: BigInt(parsed.seq), at: at && Number.isFinite(at.getTime()) ? at : null };
}

export interface SiemLag {
  headSeq: bigint;
  lagEvents: number;
  /** Age of the oldest event the SIEM has not accepted (0 when caught up). */
  lagSeconds: number;
}

/** The chain's head and the oldest event after `cursor`, in one query. */
export async function measureSiemLag(db: AuditDb, cursor: bigint, now = Date.now()): Promise<SiemLag> {
  const [row] = await auditSql(db).query<{ head: string | null; oldest: Date | null }>(
    "SELECT (SELECT seq::text FROM audit_chain_head WHERE id = 1) AS head, (SELECT at FROM audit_events WHERE seq > $1::bigint ORDER BY seq LIMIT 1) AS oldest",
    [cursor.toString()],
  );
  const head = BigInt(row?.head ?? "0");
  return {
    headSeq: head,
    lagEvents: Number(head > cursor ? head - cursor : 0n),
    lagSeconds: row?.oldest ? Math.max(0, (now - new Date(row.oldest).getTime()) / 1000) : 0,
  };
}

/**
 * The sink as a metric label: the HTTP endpoint's origin (never its path or query, which may
 * carry an ingest token) or syslog+tcp://HOST:PORT.
 */
export function siemSinkLabel(config: SiemConfig): string {
  return config.kind === "http" ? new URL(config.url).origin : `syslog+tcp://${config.host}:${config.port}`;
}
