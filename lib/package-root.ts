import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_NAME = "bulkhead";

/**
 * The folder of Bulkhead's own package: the nearest folder above `from` (by default this module,
 * wherever it was compiled to: `lib/`, or the CLI's `dist/cli/<build>/`) whose package.json is
 * Bulkhead's. What ships with the code (migrations, the dashboard's build, `bin/`) is found there,
 * never through the working directory: `node /opt/bulkhead/bin/bulkhead.mjs task create ...` run
 * from an agent's project folder must read the same migrations as `npm start` in the checkout.
 * The working directory is the answer only when no such folder exists above `from`.
 */
export function packageRoot(from: string = import.meta.url): string {
  let dir = path.dirname(from.startsWith("file:") ? fileURLToPath(from) : from);
  for (;;) {
    if (isBulkheadPackage(path.join(dir, "package.json"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

function isBulkheadPackage(manifest: string): boolean {
  if (!existsSync(manifest)) return false;
  try {
    return (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}
