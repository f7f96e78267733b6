#!/usr/bin/env node
// The `bulkhead` command. Bulkhead's CLI is TypeScript; tsx loads it with the project's tsconfig
// (for the `@/` import alias) so no separate build step is needed.
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });
const { main } = await import("../lib/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
