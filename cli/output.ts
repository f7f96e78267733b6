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
let guarded = false;

export function guardOutput(): void {
  if (guarded) return;
  guarded = true;
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => gone.add(stream));
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
