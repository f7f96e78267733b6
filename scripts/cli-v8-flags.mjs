// V8 settings for one run of the `bulkhead` command, chosen by the command it runs.
//
// A command such as `token mint` or `agent create` lives about a second, and Prisma's query
// compiler (a WebAssembly module of 3.4 MB) plans each of its first queries in it. V8 compiles
// WebAssembly twice by default: at once with its baseline compiler (Liftoff), then again, on
// background threads, with its optimising one (TurboFan) for functions that run hot. A short
// command never profits from the second compilation, and on a machine with two cores those
// threads take CPU from the command itself: with `--liftoff-only`, `token mint` against a running
// database took 1.4 s instead of 2.0 s and 1.5 s of CPU instead of 2.6 (docs/benchmarks.md).
// The processes that stay up (`start`, whose dashboard and worker are processes of their own, and
// `worker`) keep V8's default: they run the same queries for hours.

/** Commands that keep running; everything else is a short command. */
const LONG_RUNNING = new Set(["start", "worker"]);

/** The command a `bulkhead` argument list runs (the first argument that is not `--json`), or null. */
export function commandOf(argv) {
  for (const arg of argv) {
    if (arg === "--") return null;
    if (arg !== "--json") return arg;
  }
  return null;
}

/** The V8 flags for a run of `bulkhead` with these arguments. */
export function v8FlagsFor(argv) {
  const command = commandOf(argv);
  return command === null || LONG_RUNNING.has(command) ? [] : ["--liftoff-only"];
}
