import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { decodeFrames, encodeFrame, SEGMENT_HEADER_BYTES, segmentHeader } from "@/proxy-worker/audit/wal/frame";
import { WalDiskReader } from "@/proxy-worker/audit/wal/reader";
import { listSegments, recoverTail, segmentFile } from "@/proxy-worker/audit/wal/segments";

const flip = (b: Buffer, at: number) => b.writeUInt8(b.readUInt8(at) ^ 1, at);
const row = (i: number) => prepareEvent({ type: "proxy.decision", actorType: "agent", outcome: "allow", reason: `request ${i}`, data: { i } }, new Date());

/**
 * Recovering the newest segment at start (real files): a torn end is cut, damage with valid
 * records after it is told apart and those records are kept, each stretch in a segment of its own.
 */
describe("recovering the newest segment of the audit log", () => {
  let dir: string;
  const TAG = 7;
  /** A segment of `count` records from LSN 1; `damage` changes the frames (by index) as written. */
  const writeSegment = async (count: number, damage: (frames: Buffer[]) => void = () => undefined, tail: Buffer = Buffer.alloc(0)) => {
    const frames = Array.from({ length: count }, (_, i) => encodeFrame(i + 1, row(i + 1)));
    damage(frames);
    const file = segmentFile(dir, "w", 1);
    await writeFile(file, Buffer.concat([segmentHeader(TAG), ...frames, tail]));
    return { file, frames };
  };
  const lsnsIn = async (file: string, first: number) => decodeFrames(await readFile(file), SEGMENT_HEADER_BYTES, first).records.map((r) => r.lsn);
  const recover = async () => recoverTail({ first: 1, file: segmentFile(dir, "w", 1), size: 0 }, TAG);

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-wal-recover-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("cuts a torn end (nothing valid after the bad bytes) and keeps everything before it", async () => {
    const whole = encodeFrame(6, row(6));
    const { file, frames } = await writeSegment(5, () => undefined, whole.subarray(0, 40));
    const r = await recover();
    expect(r).toMatchObject({ lastLsn: 5, truncatedBytes: 40, problem: "incomplete", damage: [], split: [] });
    expect((await stat(file)).size).toBe(SEGMENT_HEADER_BYTES + frames.reduce((n, f) => n + f.length, 0));
    // A last record that fails its checksum is a torn end too.
    await writeSegment(5, (f) => flip(f[4]!, 30));
    expect(await recover()).toMatchObject({ lastLsn: 4, problem: "checksum", damage: [], split: [] });
  });

  it("keeps the valid records after each damaged stretch in a segment of its own, and says what each stretch took", async () => {
    let frames: Buffer[] = [];
    const { file } = await writeSegment(10, (f) => {
      flip(f[2]!, 30); // record 3: a flipped payload byte
      f[6]!.writeUInt32LE(0x7fffffff, 0); // record 7: a length that is damage, not data
      frames = f;
    });
    const offsetOf = (i: number) => SEGMENT_HEADER_BYTES + frames.slice(0, i).reduce((n, f) => n + f.length, 0);
    const r = await recover();
    expect(r.lastLsn).toBe(10);
    expect(r.truncatedBytes).toBe(0);
    expect(r.damage).toEqual([
      { from: 3, to: 3, offset: offsetOf(2), bytes: frames[2]!.length, problem: "checksum", segment: file },
      { from: 7, to: 7, offset: offsetOf(6), bytes: frames[6]!.length, problem: "length", segment: file },
    ]);
    expect(r.split.map((s) => [path.basename(s.file), s.first])).toEqual([
      ["w.0000000000000004.wal", 4],
      ["w.0000000000000008.wal", 8],
    ]);
    expect(await lsnsIn(file, 1)).toEqual([1, 2]);
    expect(await lsnsIn(segmentFile(dir, "w", 4), 4)).toEqual([4, 5, 6]);
    expect(await lsnsIn(segmentFile(dir, "w", 8), 8)).toEqual([8, 9, 10]);
    // Read back in order, the shipper gets every kept record and a gap for each stretch lost.
    const segments = await listSegments(dir, "w");
    const reader = new WalDiskReader();
    const got: Array<number | string> = [];
    for (let from = 1; from <= 10; ) {
      const { records, gap } = await reader.read(segments, from, 10, 100);
      got.push(...records.map((x) => x.lsn));
      if (gap) got.push(`gap ${gap.from}-${gap.to}`);
      from = gap ? gap.to + 1 : from + records.length;
    }
    await reader.close();
    expect(got).toEqual([1, 2, "gap 3-3", 4, 5, 6, "gap 7-7", 8, 9, 10]);
  });

  it("keeps the records between damage and a torn end, and cuts only the torn end", async () => {
    const torn = Buffer.from(encodeFrame(9, row(9)).subarray(0, 25));
    const { file } = await writeSegment(8, (f) => flip(f[0]!, 20), torn);
    const r = await recover();
    expect(r).toMatchObject({ lastLsn: 8, truncatedBytes: 25, problem: "incomplete", damage: [expect.objectContaining({ from: 1, to: 1 })] });
    expect((await stat(file)).size).toBe(SEGMENT_HEADER_BYTES);
    expect(await lsnsIn(segmentFile(dir, "w", 2), 2)).toEqual([2, 3, 4, 5, 6, 7, 8]);
  });
});
