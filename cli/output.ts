/**
 * Standard output and standard error whose reader went away (`bulkhead audit export | head`, a
 * closed terminal). The next write to such a stream fails with EPIPE, emitted as an 'error' event;
 * unhandled, it ended the process on the spot, before the command's own cleanup, and an embedded
 * PostgreSQL the command had started for itself was left running. guardOutput() takes the error
 * and marks the stream gone: the command goes on to its end, and what it would still print there
 * is dropped. A command streaming to standard output (an export) checks `outputGone` and stops
 * with an error instead of reporting a complete result.
 */
const gone = new WeakSet<NodeJS.WritableStream>();
/** Why a stream stopped taking writes, when it was not its reader going away (EPIPE). */
const failures = new WeakMap<NodeJS.WritableStream, NodeJS.ErrnoException>();
let guarded = false;

export function guardOutput(): void {
  if (guarded) return;
  guarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      gone.add(stream);
      if (error.code !== "EPIPE" && !failures.has(stream)) failures.set(stream, error);
    });
  }
}

/**
 * Why `stream` could not be written, in words, when its writes failed (a full disk where it was
 * redirected, an I/O error); null when it took everything, or when its reader went away (EPIPE:
 * `| head` chose to stop reading, and what it did not read was not wanted).
 */
export function outputFailure(stream: NodeJS.WritableStream): string | null {
  const error = failures.get(stream);
  return error ? writeErrorText(error) : null;
}

/** A failed write's reason in words, with its code: "no space left on device (ENOSPC)". */
export function writeErrorText(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const why = e.code === "ENOSPC" ? "no space left on device" : e.code === "EFBIG" ? "the file is too large" : e.code === "EIO" ? "an I/O error" : e.code === "EDQUOT" ? "the disk quota is exceeded" : (e.message ?? String(error));
  return `${why}${e.code ? ` (${e.code})` : ""}`;
}

/**
 * Resolves once what was written to `stream` so far has been taken or has failed: a write's error
 * is reported after the write returns, so a command that ends at once would not see it yet.
 */
export async function settled(stream: NodeJS.WritableStream): Promise<void> {
  if (!outputGone(stream)) await new Promise<void>((resolve) => stream.write("", () => resolve()));
  await new Promise((resolve) => setImmediate(resolve));
}

/** Whether `stream` can no longer be written (its reader went away, or it failed). */
export function outputGone(stream: NodeJS.WritableStream): boolean {
  const s = stream as NodeJS.WritableStream & { destroyed?: boolean; errored?: unknown };
  return gone.has(stream) || s.destroyed === true || Boolean(s.errored);
}

/** Resolves when `stream` takes writes again, or can never take them (closed, failed). */
export function writable(stream: NodeJS.WritableStream): Promise<void> {
  if (outputGone(stream)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      stream.off("error", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
    stream.on("error", done);
  });
}
