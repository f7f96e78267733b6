// Types for scripts/cli-v8-flags.mjs (plain JavaScript: bin/bulkhead.mjs loads it before anything is compiled).
/** The command a `bulkhead` argument list runs (the first argument that is not `--json`), or null. */
export function commandOf(argv: readonly string[]): string | null;
/** The V8 flags for a run of `bulkhead` with these arguments. */
export function v8FlagsFor(argv: readonly string[]): string[];
