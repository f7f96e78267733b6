import { write, writeSync } from "node:fs";
import pino, { type Logger, type LoggerOptions } from "pino";

const REDACT = { paths: ["*.password", "*.secret", "*.token", "*.authorization", "*.headers.authorization", "*.headers[\"proxy-authorization\"]"], censor: "[redacted]" };

/** Each logger's twin without the redaction walk, writing to the same stream (see `withoutRedaction`). */
const twins = new WeakMap<Logger, Logger>();

/** How long a line may wait in a buffered logger's memory before it is written. */
export const LOG_FLUSH_MS = 100;
const BUFFER_BYTES = 4096;
/** What a buffered logger holds while standard output does not take its writes; beyond it lines are dropped. */
const MAX_PENDING_BYTES = 1024 * 1024;
/** How long a synchronous write waits, in all, for a full pipe (EAGAIN) before its lines are dropped. */
const SYNC_RETRY_MS = 100;

/** Lines no logger of this process could write, and why the last could not. */
const lost = { lines: 0, lastError: null as string | null };

/** Lines dropped because standard output would not take them (a full disk, a closed pipe), and the last error. */
export function droppedLogLines(): { lines: number; lastError: string | null } {
  return { ...lost };
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes `data` whole with blocking writes; a full non-blocking pipe (EAGAIN) is waited for up to
 * SYNC_RETRY_MS in all. Throws what the descriptor answered otherwise.
 */
function writeAllSync(fd: number, data: Buffer): void {
  let offset = 0;
  let waited = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset, data.length - offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN" || waited >= SYNC_RETRY_MS) throw error;
      Atomics.wait(sleeper, 0, 0, 1);
      waited += 1;
    }
  }
}

/**
 * Standard output as every logger's destination, whatever becomes of it. pino's own destination
 * (sonic-boom) gave up quietly only on a closed pipe (EPIPE): any other write error (a full disk
 * where the output is redirected, an I/O error) was emitted as an 'error' nobody handled, which
 * ended the worker through its fatal-error path, whose synchronous flush then retried the same
 * failing write every 100 ms for ever: the worker hung with its main thread asleep, its proxy and
 * health ports unanswered and its launcher none the wiser. Here a line that cannot be written is
 * dropped and counted (`droppedLogLines`, the worker's `bulkhead_log_lines_dropped_total`) and
 * the process goes on: these are operational logs, and the audit log, not this output, is the
 * record of what was decided. A write never blocks for more than SYNC_RETRY_MS.
 *
 * `buffered`: lines are gathered and written from the thread pool once BUFFER_BYTES wait, or
 * every LOG_FLUSH_MS, instead of one system call per line (for the proxy worker, which writes a
 * decision line per request: one write per request measured ~3 % of its CPU at 1k requests/s);
 * at most MAX_PENDING_BYTES wait while the output does not take them, so a stalled reader cannot
 * grow the process without bound. On exit (including `process.exit` after a fatal error) what is
 * waiting is written synchronously, once; a SIGKILL loses at most the last LOG_FLUSH_MS of lines.
 * Otherwise each line is written synchronously as it is logged, in order.
 */
export class OutputDestination {
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly fd: number,
    private readonly buffered: boolean,
  ) {
    if (!buffered) return;
    setInterval(() => this.flush(), LOG_FLUSH_MS).unref();
    process.on("exit", () => this.flushSync());
  }

  write(line: string): boolean {
    if (!this.buffered) {
      this.writeLinesSync(line, 1);
      return true;
    }
    if (this.pendingBytes + line.length > MAX_PENDING_BYTES) {
      this.drop(1, "the output has not taken the lines waiting for it");
      return true;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= BUFFER_BYTES) this.flush();
    return true;
  }

  /** Writes what waits from the thread pool (one write at a time). */
  flush(): void {
    if (this.writing || this.retry !== null || this.pending.length === 0) return;
    const count = this.pending.length;
    const data = Buffer.from(this.pending.join(""));
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = true;
    this.writeFrom(data, 0, count);
  }

  private writeFrom(data: Buffer, offset: number, count: number): void {
    write(this.fd, data, offset, data.length - offset, null, (error, written) => {
      if (!error && offset + written < data.length) return this.writeFrom(data, offset + written, count);
      this.writing = false;
      if (error && error.code === "EAGAIN") {
        // A full pipe: the rest goes first once it drains (lines logged meanwhile wait behind it).
        const rest = data.subarray(offset).toString();
        this.pending.unshift(rest);
        this.pendingBytes += rest.length;
        this.retry = setTimeout(() => {
          this.retry = null;
          this.flush();
        }, 10);
        this.retry.unref();
        return;
      }
      if (error) this.drop(count, error.message);
      if (this.pendingBytes >= BUFFER_BYTES) this.flush();
    });
  }

  /** Writes what waits at once, synchronously and once (pino calls it after a fatal line; exit calls it). */
  flushSync(): void {
    if (this.pending.length === 0) return;
    const count = this.pending.length;
    const data = this.pending.join("");
    this.pending = [];
    this.pendingBytes = 0;
    // A write still in flight from the thread pool is not waited for: on exit it is lost either way.
    this.writeLinesSync(data, count);
  }

  private writeLinesSync(data: string, count: number): void {
    try {
      writeAllSync(this.fd, Buffer.from(data));
    } catch (error) {
      this.drop(count, (error as Error).message);
    }
  }

  private drop(count: number, why: string): void {
    lost.lines += count;
    lost.lastError = why;
  }
}

/** Standard output, unbuffered: shared by the loggers that write each line as it comes. */
let direct: OutputDestination | null = null;

/**
 * Structured JSON logs (one object per line), the same shape in the app, worker and CLI. With
 * `bufferedStdout`, lines go to standard output in batches (see `OutputDestination`).
 */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? "info", o: { bufferedStdout?: boolean } = {}): Logger {
  const options: LoggerOptions = { name, level, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime };
  const destination = o.bufferedStdout ? new OutputDestination(1, true) : (direct ??= new OutputDestination(1, false));
  const log = pino({ ...options, redact: REDACT }, destination);
  const stream = (log as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym];
  if (stream) twins.set(log, pino(options, stream));
  return log;
}

/**
 * The same logger without the redaction of secret-named keys, for lines whose every field Bulkhead
 * builds itself and that can never hold such a key: the decision log line (flat fields, escaped
 * strings, arrays of strings). Checking every line's keys against the redaction paths cost ~5 % of
 * the worker's CPU at 1k requests/s on `bulkhead start`, for nothing, since the line writes one per
 * request. Same stream (so lines stay in order), same level; a logger this module did not create
 * (a child, a test's) is returned as it is, redaction and all.
 */
export function withoutRedaction(log: Logger): Logger {
  const twin = twins.get(log);
  if (!twin) return log;
  if (twin.level !== log.level) twin.level = log.level;
  return twin;
}
export type { Logger };
