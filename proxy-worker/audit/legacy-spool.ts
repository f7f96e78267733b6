/**
 * Versions before the write-ahead log kept events in a spool while PostgreSQL was away
 * (`<spool dir>/<workerId>.<n>.jsonl`, one JSON event per line). A worker that finds one moves
 * its events into the log once, so nothing it acknowledged is lost in the upgrade.
 *
 * That spool could hold events already committed (its process died between commit and delete),
 * so the LSN range they get is remembered (`<workerId>.legacy-range` in the log directory,
 * written before the events are appended) and the shipper inserts events in that range only if
 * the same event id at the same time is not in audit_events yet. An import cut short is repeated
 * from the start and the range widened; the check removes the copies.
 */
import { open, readdir, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "@/lib/log";
import type { AuditRow } from "./event";
import type { AuditWal } from "./wal/log";
import { syncDir } from "./wal/segments";

export interface LegacyRange {
  from: number;
  to: number;
  /** Removed once the shipper is past `to`. */
  file: string;
}

function parseLine(line: string): AuditRow | null {
  try {
    const v = JSON.parse(line) as Record<string, unknown>;
    if (v.v !== 1 || typeof v.eventId !== "string" || typeof v.at !== "string" || typeof v.type !== "string" || typeof v.actorType !== "string") return null;
    if (typeof v.data !== "object" || v.data === null) return null;
    const s = (x: unknown) => (typeof x === "string" ? x : null);
    return {
      eventId: v.eventId,
      at: v.at,
      type: v.type,
      actorType: v.actorType,
      actorId: s(v.actorId),
      agentId: s(v.agentId),
      taskId: s(v.taskId),
      outcome: s(v.outcome),
      effect: s(v.effect),
      reason: s(v.reason),
      ruleId: s(v.ruleId),
      data: JSON.stringify(v.data),
    };
  } catch {
    return null; // a torn last line: an append that was never acknowledged
  }
}

async function writeDurably(file: string, text: string): Promise<void> {
  const handle = await open(`${file}.tmp`, "w", 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(`${file}.tmp`, file);
  await syncDir(path.dirname(file));
}

/** Moves a legacy spool's events into the log; returns the LSN range the shipper must de-duplicate. */
export async function importLegacySpool(wal: AuditWal, walDir: string, spoolDir: string, workerId: string, log?: Logger): Promise<LegacyRange | null> {
  const rangeFile = path.join(walDir, `${workerId}.legacy-range`);
  const previous = await readFile(rangeFile, "utf8").then(
    (t) => {
      const [from, to] = t.trim().split(" ").map(Number);
      return Number.isInteger(from) && Number.isInteger(to) ? { from: from!, to: to! } : null;
    },
    () => null,
  );
  const names = await readdir(spoolDir).catch(() => [] as string[]);
  const segments = names.filter((n) => n.startsWith(`${workerId}.`) && /^\d{8,}\.jsonl$/.test(n.slice(workerId.length + 1))).sort();
  if (segments.length === 0) return previous ? { ...previous, file: rangeFile } : null;

  const rows: AuditRow[] = [];
  let unreadable = 0;
  for (const name of segments) {
    for (const line of (await readFile(path.join(spoolDir, name), "utf8")).split("\n")) {
      if (line === "") continue;
      const row = parseLine(line);
      if (row) rows.push(row);
      else unreadable++;
    }
  }
  if (rows.length === 0) {
    for (const name of segments) await unlink(path.join(spoolDir, name));
    return previous ? { ...previous, file: rangeFile } : null;
  }
  const range = { from: previous?.from ?? wal.lastLsn + 1, to: wal.lastLsn + rows.length };
  await writeDurably(rangeFile, `${range.from} ${range.to}\n`);
  await Promise.all(rows.map((row) => wal.append(row)));
  await wal.syncNow();
  for (const name of segments) await unlink(path.join(spoolDir, name));
  await syncDir(spoolDir);
  log?.warn({ spoolDir, events: rows.length, unreadable, lsns: range }, "audit spool of an earlier version moved into the audit log");
  return { ...range, file: rangeFile };
}

/** The shipper is past the range: forget it. */
export async function forgetLegacyRange(range: LegacyRange): Promise<void> {
  await unlink(range.file).catch(() => undefined);
}
