/**
 * Turns the fence's per-flow drop counters into blocked-escape tallies, each attributed to the
 * sandbox that sent the packets.
 *
 * The counters are keyed by source address and read on a clock, so a sandbox that tries to leave
 * and ends before the next read would have its last drops read after the worker's snapshot stopped
 * binding its address: they would be counted against no task. So a binding that leaves the
 * snapshot is remembered for a while (`DEPARTED_MS`), and its departure reads the counters at once.
 * A live binding of the same address wins over a remembered one.
 *
 * Reads run one at a time: the delta of a flow is taken against the count the previous read saw,
 * and two reads finishing out of order would count the same packets twice.
 *
 * The counts survive the worker: the fence outlives it (a sandbox may run on while it restarts),
 * and a new worker counting from zero would audit every drop of the last hour again, against
 * whichever sandbox holds each address now. So the counts whose drops have been audited are kept
 * in a small file (`countsFile`, written whole and renamed into place), and a worker starts from
 * them: a graceful restart audits each drop once; after a crash, drops read but not yet audited are
 * counted again by the next worker rather than lost.
 */
import { readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { DropCount } from "./fence";

export interface Binding {
  sandboxId: string;
  taskId: string;
}

/** How long a binding that left the snapshot still claims the drops of its address. */
export const DEPARTED_MS = 30_000;
/** Past this many flows the remembered counts are dropped (each then counts once more in full). */
const MAX_SEEN = 100_000;

export interface DropReaderOptions {
  read: () => Promise<DropCount[]>;
  /** The live bindings of the worker's current snapshot (address -> sandbox). */
  bindings: () => ReadonlyMap<string, Binding> | undefined;
  onDrops: (binding: Binding | null, flow: DropCount, delta: number) => void;
  /** After each read: null when it worked, else why it failed. */
  onRead: (error: unknown) => void;
  /** Where the audited counts are kept across workers (none: each worker starts from zero). */
  countsFile?: string;
  /** A counts file that could not be read or written (the reader goes on without it). */
  onStateError?: (error: unknown) => void;
  now?: () => number;
}

interface CountsFile {
  version: 1;
  counts: Record<string, number>;
}

export class DropReader {
  private readonly seen = new Map<string, number>();
  private readonly departed = new Map<string, { binding: Binding; until: number }>();
  private previous = new Map<string, Binding>();
  private chain: Promise<void> = Promise.resolve();
  private saving: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly o: DropReaderOptions) {
    this.now = o.now ?? Date.now;
    if (o.countsFile) this.load(o.countsFile);
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.o.onStateError?.(error);
      return;
    }
    try {
      const parsed = JSON.parse(text) as Partial<CountsFile>;
      if (parsed.version !== 1 || typeof parsed.counts !== "object" || parsed.counts === null) throw new Error(`${file} is not a counts file of this version`);
      for (const [key, packets] of Object.entries(parsed.counts)) {
        if (Number.isSafeInteger(packets) && packets >= 0 && this.seen.size < MAX_SEEN) this.seen.set(key, packets);
      }
    } catch (error) {
      this.seen.clear();
      this.o.onStateError?.(error);
    }
  }

  /**
   * The counts that every drop handed to `onDrops` so far adds up to. Taken before those drops are
   * audited, and passed to `save` once they are.
   */
  mark(): ReadonlyMap<string, number> {
    return new Map(this.seen);
  }

  /** Keeps `counts` (from `mark`) as where the next worker starts. */
  save(counts: ReadonlyMap<string, number>): Promise<void> {
    // One write at a time, in the order asked: they share the temporary file.
    this.saving = this.saving.then(() => this.write(counts));
    return this.saving;
  }

  private async write(counts: ReadonlyMap<string, number>): Promise<void> {
    const file = this.o.countsFile;
    if (!file) return;
    const body: CountsFile = { version: 1, counts: Object.fromEntries(counts) };
    const temporary = `${file}.${process.pid}.tmp`;
    try {
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(temporary, JSON.stringify(body), { mode: 0o600 });
      await rename(temporary, file);
    } catch (error) {
      this.o.onStateError?.(error);
    }
  }

  /**
   * The snapshot changed: remembers the bindings it no longer has, and when there are any, reads
   * the counters now, while the departed sandboxes' drops are still theirs to claim.
   */
  bindingsChanged(next: ReadonlyMap<string, Binding>): Promise<void> | null {
    const until = this.now() + DEPARTED_MS;
    let left = false;
    for (const [address, binding] of this.previous) {
      const still = next.get(address);
      if (still && still.sandboxId === binding.sandboxId) continue;
      this.departed.set(address, { binding, until });
      left = true;
    }
    this.previous = new Map(next);
    return left ? this.read() : null;
  }

  /**
   * Reads the counters once (after any read already running) and reports each flow's new drops.
   * A failed read does not reject: its error goes to `onRead`.
   */
  read(): Promise<void> {
    const next = this.chain.then(() => this.readOnce());
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async readOnce(): Promise<void> {
    let drops: DropCount[];
    try {
      drops = await this.o.read();
    } catch (error) {
      this.o.onRead(error ?? new Error("the counters could not be read"));
      return;
    }
    this.o.onRead(null);
    const now = this.now();
    for (const [address, d] of this.departed) if (d.until <= now) this.departed.delete(address);
    const live = this.o.bindings();
    for (const flow of drops) {
      // A link-local flow is a set element of its own, though its source is the sandbox's address.
      const key = `${flow.source}|${flow.destination}|${flow.protocol}|${flow.port}${flow.linkLocal ? "|ll" : ""}`;
      const before = this.seen.get(key) ?? 0;
      // Fewer than before: the element timed out and came back, so all of its count is new.
      const delta = flow.packets >= before ? flow.packets - before : flow.packets;
      this.seen.set(key, flow.packets);
      if (delta > 0) this.o.onDrops(live?.get(flow.source) ?? this.departed.get(flow.source)?.binding ?? null, flow, delta);
    }
    if (this.seen.size > MAX_SEEN) this.seen.clear();
  }

  /** Remembered departures (tests). */
  departedCount(): number {
    return this.departed.size;
  }
}
