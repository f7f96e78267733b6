/**
 * The write-ahead log's on-disk records. A segment file starts with a 16-byte header
 * (`BHAUDWAL`, u32 LE format version, u32 LE tag of the log's identity: 0 in segments written
 * before the tag) and holds frames back to back:
 *
 *   u32 LE payload length | u32 LE CRC-32 of (LSN bytes + payload) | u64 LE LSN | payload
 *
 * The payload is one event: a JSON array of its fields, a newline, and its data as JSON text
 * (kept as text, so reading it back costs no re-serialisation). LSNs are consecutive within a
 * segment and the file name carries the first one. A frame that is incomplete, fails its CRC or
 * breaks the LSN sequence ends what can be read from that segment (`findNextFrame` looks past it).
 */
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import type { AuditRow } from "../event";

export const SEGMENT_MAGIC = Buffer.from("BHAUDWAL", "latin1");
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 16;
export const FRAME_HEADER_BYTES = 16;
/** Larger lengths are damage, not data (an event's data is capped far below this). */
export const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

export interface WalRecord {
  lsn: number;
  row: AuditRow;
  /** Frame size on disk. */
  bytes: number;
}

/**
 * The log's identity as a segment header carries it: the first 32 bits of SHA-256 of the wal id,
 * never 0 (which marks a segment written before the tag). A segment of another log (a folder
 * copied from another machine's worker with the same id) is told apart before it is shipped.
 */
export function logTag(walId: string): number {
  return createHash("sha256").update(walId).digest().readUInt32LE(0) || 1;
}

export function segmentHeader(tag = 0): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32LE(SEGMENT_VERSION, 8);
  b.writeUInt32LE(tag, 12);
  return b;
}

/** The header's log tag (0: written before the tag). */
export function segmentTag(header: Buffer): number {
  return header.readUInt32LE(12);
}

export function isSegmentHeader(b: Buffer): boolean {
  return b.length >= SEGMENT_HEADER_BYTES && b.subarray(0, 8).equals(SEGMENT_MAGIC) && b.readUInt32LE(8) === SEGMENT_VERSION;
}

export function encodeFrame(lsn: number, row: AuditRow): Buffer {
  const head = JSON.stringify([row.eventId, row.at, row.type, row.actorType, row.actorId, row.agentId, row.taskId, row.outcome, row.effect, row.reason, row.ruleId]);
  const payloadBytes = Buffer.byteLength(head) + 1 + Buffer.byteLength(row.data);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadBytes);
  frame.writeUInt32LE(payloadBytes, 0);
  frame.writeBigUInt64LE(BigInt(lsn), 8);
  let at = FRAME_HEADER_BYTES + frame.write(head, FRAME_HEADER_BYTES, "utf8");
  frame[at++] = 0x0a;
  frame.write(row.data, at, "utf8");
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4);
  return frame;
}

export type FrameProblem = "incomplete" | "length" | "checksum" | "sequence" | "payload";

export interface DecodeResult {
  records: WalRecord[];
  /** Offset just past the last good frame. */
  end: number;
  /** Why decoding stopped before the end of the buffer (null: it reached the end, or `max`). */
  problem: FrameProblem | null;
}

/** Decodes frames from `offset`, expecting `nextLsn` first, at most `max` of them. */
export function decodeFrames(buf: Buffer, offset: number, nextLsn: number, max = Infinity): DecodeResult {
  const records: WalRecord[] = [];
  let at = offset;
  let lsn = nextLsn;
  while (records.length < max) {
    if (at === buf.length) return { records, end: at, problem: null };
    if (buf.length - at < FRAME_HEADER_BYTES) return { records, end: at, problem: "incomplete" };
    const length = buf.readUInt32LE(at);
    if (length > MAX_PAYLOAD_BYTES) return { records, end: at, problem: "length" };
    const total = FRAME_HEADER_BYTES + length;
    if (buf.length - at < total) return { records, end: at, problem: "incomplete" };
    if (crc32(buf.subarray(at + 8, at + total)) !== buf.readUInt32LE(at + 4)) return { records, end: at, problem: "checksum" };
    if (Number(buf.readBigUInt64LE(at + 8)) !== lsn) return { records, end: at, problem: "sequence" };
    const row = decodePayload(buf.subarray(at + FRAME_HEADER_BYTES, at + total));
    if (!row) return { records, end: at, problem: "payload" };
    records.push({ lsn, row, bytes: total });
    lsn++;
    at += total;
  }
  return { records, end: at, problem: null };
}

/**
 * The first whole, valid frame at or after `from` whose LSN is `minLsn` or later, or null: where
 * reading can go on after damage. A frame is at least its header, which bounds the LSNs that can
 * follow; only a candidate whose LSN fits is checksummed.
 */
export function findNextFrame(buf: Buffer, from: number, minLsn: number): { offset: number; lsn: number } | null {
  const maxLsn = minLsn + Math.floor((buf.length - from) / FRAME_HEADER_BYTES);
  for (let at = from; at + FRAME_HEADER_BYTES <= buf.length; at++) {
    const lsn = buf.readUInt32LE(at + 12) * 2 ** 32 + buf.readUInt32LE(at + 8);
    if (lsn < minLsn || lsn > maxLsn) continue;
    if (decodeFrames(buf, at, lsn, 1).records.length === 1) return { offset: at, lsn };
  }
  return null;
}

function decodePayload(payload: Buffer): AuditRow | null {
  const newline = payload.indexOf(0x0a);
  if (newline < 0) return null;
  try {
    const f = JSON.parse(payload.toString("utf8", 0, newline)) as unknown[];
    const s = (v: unknown) => (typeof v === "string" ? v : null);
    if (!Array.isArray(f) || f.length !== 11 || typeof f[0] !== "string" || typeof f[1] !== "string" || typeof f[2] !== "string" || typeof f[3] !== "string") return null;
    return {
      eventId: f[0],
      at: f[1],
      type: f[2],
      actorType: f[3],
      actorId: s(f[4]),
      agentId: s(f[5]),
      taskId: s(f[6]),
      outcome: s(f[7]),
      effect: s(f[8]),
      reason: s(f[9]),
      ruleId: s(f[10]),
      data: payload.toString("utf8", newline + 1),
    };
  } catch {
    return null;
  }
}
