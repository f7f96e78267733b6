// Types for scripts/cli-build.mjs (plain JavaScript so that bin/bulkhead.mjs can load it without a loader).
export interface BuildOptions {
  log?: (line: string) => void;
}
/** The entry of the current build if no input changed since it was made; otherwise null. */
export function freshEntry(): string | null;
/** Builds the CLI and worker into a new folder under dist/cli and makes it current. */
export function buildCli(options?: BuildOptions): Promise<string>;
/** The entry of a fresh build, building first when there is none or a source changed. */
export function ensureCliBuilt(options?: BuildOptions): Promise<string>;
/** The file in each build's folder that names the packages compiled into each of its output files. */
export const BUNDLED_PACKAGES_FILE: string;
