import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DEPARTED_MS, DropReader, type Binding } from "@/proxy-worker/isolation/drop-reader";
import type { DropCount } from "@/proxy-worker/isolation/fence";

const A = { sandboxId: "sb-a", taskId: "task-a" };
const B = { sandboxId: "sb-b", taskId: "task-b" };
const flow = (source: string, packets: number): DropCount => ({ source, destination: "203.0.113.9", protocol: "udp", port: 9999, packets });

function harness() {
  let clock = 1_000_000;
  let live = new Map<string, Binding>();
  const reads: Array<{ resolve: (d: DropCount[]) => void; reject: (e: Error) => void }> = [];
  const seen: Array<{ taskId: string | null; source: string; delta: number }> = [];
  const errors: Array<unknown> = [];
  const reader = new DropReader({
    read: () => new Promise((resolve, reject) => reads.push({ resolve, reject })),
    bindings: () => live,
    onDrops: (binding, f, delta) => seen.push({ taskId: binding?.taskId ?? null, source: f.source, delta }),
    onRead: (error) => errors.push(error),
    now: () => clock,
  });
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return {
    reader,
    seen,
    errors,
    reads,
    settle,
    bind(next: Map<string, Binding>) {
      live = next;
      return reader.bindingsChanged(next);
    },
    advance(ms: number) {
      clock += ms;
    },
    /** Answers the oldest pending read, then lets the reader process it. */
    async answer(drops: DropCount[]) {
      await settle();
      reads.shift()!.resolve(drops);
      await settle();
    },
  };
}

describe("the fence's drop reader", () => {
  it("counts each flow's new packets once, whatever the order reads were asked in", async () => {
    const h = harness();
    h.bind(new Map([["10.0.0.2", A]]));
    const first = h.reader.read();
    const second = h.reader.read();
    // The second read only starts once the first is done: a single read is outstanding.
    await h.settle();
    expect(h.reads).toHaveLength(1);
    await h.answer([flow("10.0.0.2", 3)]);
    await first;
    await h.answer([flow("10.0.0.2", 5)]);
    await second;
    expect(h.seen).toEqual([
      { taskId: "task-a", source: "10.0.0.2", delta: 3 },
      { taskId: "task-a", source: "10.0.0.2", delta: 2 },
    ]);
    expect(h.errors).toEqual([null, null]);
  });

  it("a sandbox that left is read at once and still claims its drops; a live binding of the address wins", async () => {
    const h = harness();
    expect(h.bind(new Map([["10.0.0.2", A]]))).toBeNull();
    const departure = h.bind(new Map());
    expect(departure).not.toBeNull();
    await h.answer([flow("10.0.0.2", 4)]);
    await departure;
    expect(h.seen.at(-1)).toEqual({ taskId: "task-a", source: "10.0.0.2", delta: 4 });
    // A later read on the clock, still within the memory: still A's.
    const late = h.reader.read();
    await h.answer([flow("10.0.0.2", 6)]);
    await late;
    expect(h.seen.at(-1)).toEqual({ taskId: "task-a", source: "10.0.0.2", delta: 2 });
    // The address goes to another sandbox: its drops are B's from then on.
    expect(h.bind(new Map([["10.0.0.2", B]]))).toBeNull();
    const reused = h.reader.read();
    await h.answer([flow("10.0.0.2", 7)]);
    await reused;
    expect(h.seen.at(-1)).toEqual({ taskId: "task-b", source: "10.0.0.2", delta: 1 });
  });

  it("forgets a departed sandbox after DEPARTED_MS: later drops of its address name no task", async () => {
    const h = harness();
    h.bind(new Map([["10.0.0.2", A]]));
    const departure = h.bind(new Map());
    await h.answer([]);
    await departure;
    expect(h.reader.departedCount()).toBe(1);
    h.advance(DEPARTED_MS);
    const later = h.reader.read();
    await h.answer([flow("10.0.0.2", 1)]);
    await later;
    expect(h.seen).toEqual([{ taskId: null, source: "10.0.0.2", delta: 1 }]);
    expect(h.reader.departedCount()).toBe(0);
  });

  it("a binding that moves to another sandbox counts as a departure of the first", async () => {
    const h = harness();
    h.bind(new Map([["10.0.0.2", A]]));
    expect(h.bind(new Map([["10.0.0.2", B]]))).not.toBeNull();
    await h.answer([flow("10.0.0.2", 2)]);
    // The live binding is B's: packets read now are B's (the address is B's from the snapshot on).
    expect(h.seen).toEqual([{ taskId: "task-b", source: "10.0.0.2", delta: 2 }]);
    expect(h.reader.departedCount()).toBe(1);
  });

  it("a failed read is reported, does not reject, and the next read still counts from the last good one", async () => {
    const h = harness();
    h.bind(new Map([["10.0.0.2", A]]));
    const ok = h.reader.read();
    await h.answer([flow("10.0.0.2", 2)]);
    await ok;
    const failed = h.reader.read();
    await h.settle();
    h.reads.shift()!.reject(new Error("nft: no such table"));
    await expect(failed).resolves.toBeUndefined();
    expect((h.errors.at(-1) as Error).message).toBe("nft: no such table");
    const again = h.reader.read();
    await h.answer([flow("10.0.0.2", 5)]);
    await again;
    expect(h.seen.map((s) => s.delta)).toEqual([2, 3]);
    expect(h.errors.at(-1)).toBeNull();
  });

  it("a counter that went down (its element timed out and came back) counts in full", async () => {
    const h = harness();
    h.bind(new Map([["10.0.0.2", A]]));
    const one = h.reader.read();
    await h.answer([flow("10.0.0.2", 9)]);
    await one;
    const two = h.reader.read();
    await h.answer([flow("10.0.0.2", 2)]);
    await two;
    expect(h.seen.map((s) => s.delta)).toEqual([9, 2]);
  });

  describe("counts kept across workers", () => {
    const withDir = async (body: (dir: string) => Promise<void>) => {
      const dir = await mkdtemp(path.join(tmpdir(), "bh-drops-"));
      try {
        await body(dir);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };
    const reader = (file: string, drops: DropCount[], seen: number[], errors: unknown[] = []) =>
      new DropReader({
        read: async () => drops,
        bindings: () => new Map([["10.0.0.2", A]]),
        onDrops: (_b, _f, delta) => seen.push(delta),
        onRead: () => undefined,
        countsFile: file,
        onStateError: (e) => errors.push(e),
      });

    it("a worker starts from the counts the last one audited, in a folder it creates", async () => {
      await withDir(async (dir) => {
        const file = path.join(dir, "not-yet", "fence-drops.json");
        const first: number[] = [];
        const one = reader(file, [flow("10.0.0.2", 5)], first);
        await one.read();
        await one.save(one.mark());
        expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ version: 1, counts: { "10.0.0.2|203.0.113.9|udp|9999": 5 } });
        const second: number[] = [];
        await reader(file, [flow("10.0.0.2", 7)], second).read();
        expect(first).toEqual([5]);
        expect(second).toEqual([2]);
      });
    });

    it("counts read but not yet saved are counted again by the next worker (none is lost)", async () => {
      await withDir(async (dir) => {
        const file = path.join(dir, "fence-drops.json");
        const one = reader(file, [flow("10.0.0.2", 3)], []);
        await one.read();
        await one.save(one.mark());
        const two = reader(file, [flow("10.0.0.2", 9)], []);
        await two.read(); // read, then the worker dies before its flush saved anything
        const seen: number[] = [];
        await reader(file, [flow("10.0.0.2", 9)], seen).read();
        expect(seen).toEqual([6]);
      });
    });

    it("a file that is not a counts file is reported and ignored: the worker starts from zero", async () => {
      await withDir(async (dir) => {
        const file = path.join(dir, "fence-drops.json");
        for (const body of ["{not json", JSON.stringify({ version: 2, counts: {} }), JSON.stringify({ version: 1, counts: null })]) {
          await writeFile(file, body);
          const seen: number[] = [];
          const errors: unknown[] = [];
          await reader(file, [flow("10.0.0.2", 4)], seen, errors).read();
          expect(seen).toEqual([4]);
          expect(errors).toHaveLength(1);
        }
        // Values that are not counts are skipped one by one.
        await writeFile(file, JSON.stringify({ version: 1, counts: { "10.0.0.2|203.0.113.9|udp|9999": -1, other: "x" } }));
        const seen: number[] = [];
        await reader(file, [flow("10.0.0.2", 4)], seen).read();
        expect(seen).toEqual([4]);
      });
    });

    it("saves run one at a time, in the order asked: the last mark is what the file holds", async () => {
      await withDir(async (dir) => {
        const file = path.join(dir, "fence-drops.json");
        const errors: unknown[] = [];
        const r = reader(file, [], [], errors);
        // Of different sizes, so that writes overlapping in one temporary file would show.
        const marks = [4000, 3, 2500, 1, 1200].map((n) => new Map(Array.from({ length: n }, (_, i) => [`10.0.${i >> 8}.${i & 255}|203.0.113.9|udp|${n}`, i + 1])));
        await Promise.all(marks.map((m) => r.save(m)));
        expect(errors).toEqual([]);
        expect(JSON.parse(await readFile(file, "utf8")).counts).toEqual(Object.fromEntries(marks.at(-1)!));
      });
    });
  });
});
