import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Bundles a bench entry point as scripts/cli-build.mjs bundles the worker (esbuild, packages
 * external, the `@/` alias resolved), so path F runs compiled JavaScript as `npm start` does,
 * not the TypeScript loader (whose keepNames helper shows up in profiles). Returns the file.
 */
export async function compileBenchEntry(script: string): Promise<string> {
  const outfile = path.join(root, "dist", "bench", `${path.basename(script, ".ts")}.mjs`);
  await build({
    absWorkingDir: root,
    entryPoints: [script],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    tsconfig: "tsconfig.json",
    logLevel: "warning",
    banner: { js: "import { createRequire as __bulkheadCreateRequire } from 'node:module'; const require = __bulkheadCreateRequire(import.meta.url);" },
  });
  return outfile;
}
