/**
 * Reads records back from segment files, for the shipper when the events it needs are no longer
 * in memory (after a restart, or when it fell far behind). Keeps its place between calls, so
 * shipping a long backlog reads each segment once, in chunks.
 */
import { open, type FileHandle } from "node:fs/promises";
import { decodeFrames, FRAME_HEADER_BYTES, MAX_PAYLOAD_BYTES, SEGMENT_HEADER_BYTES, type WalRecord } from "./frame";

const CHUNK_BYTES = 4 * 1024 * 1024;

export interface ReadableSegment {
  first: number;
  file: string;
  /** Bytes that may be read (the writer's size for the active segment; the file size otherwise). */
  size: number;
}

/** LSNs [from, to] cannot be read (a damaged segment, or one that is gone): never silently skipped. */
export interface WalGap {
  from: number;
  to: number;
  segment: string;
  problem: string;
  /** Bytes of damage behind it, where known (damage found when the log was opened). */
  bytes?: number;
}

export class WalDiskReader {
  private place: { file: string; offset: number; lsn: number } | null = null;
  private handle: { file: string; fh: FileHandle } | null = null;

  /**
   * Up to `max` records from `fromLsn` through `lastLsn`, in order, and then, if the segment they
   * came from ends before the next one begins, the gap (every record returned precedes it).
   */
  async read(segments: ReadableSegment[], fromLsn: number, lastLsn: number, max: number): Promise<{ records: WalRecord[]; gap: WalGap | null }> {
    const index = segments.findLastIndex((s) => s.first <= fromLsn);
    if (index < 0) {
      const to = segments[0] ? Math.min(segments[0].first - 1, lastLsn) : lastLsn;
      return { records: [], gap: { from: fromLsn, to, segment: "(none)", problem: "missing" } };
    }
    const segment = segments[index]!;
    if (this.place?.file !== segment.file || this.place.lsn !== fromLsn) this.place = { file: segment.file, offset: SEGMENT_HEADER_BYTES, lsn: segment.first };
    const place = this.place;
    const fh = await this.open(segment.file);
    const records: WalRecord[] = [];
    let damaged: string | null = null;
    while (records.length < max && place.lsn <= lastLsn && place.offset < segment.size) {
      let buf = await this.chunk(fh, place.offset, Math.min(CHUNK_BYTES, segment.size - place.offset));
      const length = buf.length >= FRAME_HEADER_BYTES ? buf.readUInt32LE(0) : 0;
      if (length <= MAX_PAYLOAD_BYTES && FRAME_HEADER_BYTES + length > buf.length && place.offset + FRAME_HEADER_BYTES + length <= segment.size) {
        buf = await this.chunk(fh, place.offset, FRAME_HEADER_BYTES + length); // one frame larger than a chunk
      }
      // Decode no more than will be taken (skipped leading records, then up to max, up to lastLsn).
      const wanted = Math.min(Math.max(0, fromLsn - place.lsn) + max - records.length, lastLsn - place.lsn + 1);
      const decoded = decodeFrames(buf, 0, place.lsn, wanted);
      let taken = 0;
      for (const r of decoded.records) {
        if (records.length >= max || r.lsn > lastLsn) break;
        place.offset += r.bytes;
        place.lsn = r.lsn + 1;
        taken++;
        if (r.lsn >= fromLsn) records.push(r);
      }
      if (taken < decoded.records.length || decoded.problem === null) continue;
      // A chunk that ends inside a frame is read on from that frame; anything else is damage.
      if (decoded.problem === "incomplete" && taken > 0) continue;
      damaged = decoded.problem;
      break;
    }
    const next = segments[index + 1];
    const exhausted = damaged !== null || place.offset >= segment.size;
    if (!exhausted || records.length >= max || place.lsn > lastLsn || !next) return { records, gap: null };
    // This segment is done: continue with the next one, saying what lies between (if anything).
    const gap = place.lsn < next.first ? { from: place.lsn, to: next.first - 1, segment: segment.file, problem: damaged ?? "short" } : null;
    this.place = { file: next.file, offset: SEGMENT_HEADER_BYTES, lsn: next.first };
    return { records, gap };
  }

  private async chunk(fh: FileHandle, position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }

  private async open(file: string): Promise<FileHandle> {
    if (this.handle?.file === file) return this.handle.fh;
    await this.close();
    this.handle = { file, fh: await open(file, "r") };
    return this.handle.fh;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    await h?.fh.close().catch(() => undefined);
  }
}
