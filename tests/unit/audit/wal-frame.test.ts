import { describe, expect, it } from "vitest";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { decodeFrames, encodeFrame } from "@/proxy-worker/audit/wal/frame";

const row = (i: number) => prepareEvent({ type: `t.${i}`, actorType: "system", reason: `r|${i}\n`, data: { i, s: "é🔑\u2028" } }, new Date(1_800_000_000_000 + i));

describe("audit log frames", () => {
  const rows = [1, 2, 3].map(row);
  const frames = rows.map((r, i) => encodeFrame(i + 1, r));
  const all = Buffer.concat(frames);

  it("read back exactly what was written, in LSN order", () => {
    const d = decodeFrames(all, 0, 1);
    expect(d.problem).toBeNull();
    expect(d.end).toBe(all.length);
    expect(d.records.map((r) => r.lsn)).toEqual([1, 2, 3]);
    expect(d.records.map((r) => r.row)).toEqual(rows);
    expect(d.records.map((r) => r.bytes)).toEqual(frames.map((f) => f.length));
  });

  it("stop at a torn last frame, at the end of the whole ones", () => {
    for (const cut of [1, 15, 16, frames[2]!.length - 1]) {
      const d = decodeFrames(all.subarray(0, all.length - cut), 0, 1);
      expect(d.records).toHaveLength(2);
      expect(d.end).toBe(frames[0]!.length + frames[1]!.length);
      expect(d.problem).toBe("incomplete");
    }
  });

  it("stop at a flipped bit, a wrong LSN or an absurd length", () => {
    const flipped = Buffer.from(all);
    flipped[frames[0]!.length + 30]! ^= 0x04;
    expect(decodeFrames(flipped, 0, 1)).toMatchObject({ problem: "checksum", end: frames[0]!.length });
    expect(decodeFrames(all, 0, 7)).toMatchObject({ problem: "sequence", end: 0, records: [] });
    const long = Buffer.from(all);
    long.writeUInt32LE(0xffffffff, frames[0]!.length);
    expect(decodeFrames(long, 0, 1)).toMatchObject({ problem: "length", end: frames[0]!.length });
  });

  it("decode no more than asked", () => {
    expect(decodeFrames(all, 0, 1, 2).records.map((r) => r.lsn)).toEqual([1, 2]);
  });
});
