import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { publicEnvironment } from "@/lib/config/child-env";
import { outputGone } from "../output";

/**
 * Inputs of the Next.js build: a change to any of them means the build is stale. Next also
 * compiles the root's proxy.ts (the request proxy: CSP, CSRF, sign-in redirects) and
 * instrumentation.ts, and copies public/; without them here, an edit to the CSP was not built and
 * the old one kept being served.
 */
const INPUTS = ["app", "components", "lib", "proxy.ts", "instrumentation.ts", "public", "next.config.ts", "postcss.config.mjs", "package-lock.json", "tsconfig.json"];
const SKIP = new Set(["node_modules", ".next", "generated"]);

function walk(p: string, out: string[]): void {
  if (!existsSync(p)) return;
  if (statSync(p).isDirectory()) {
    for (const name of readdirSync(p).sort()) if (!SKIP.has(name)) walk(path.join(p, name), out);
  } else out.push(p);
}

export function sourceFingerprint(root: string): string {
  const files: string[] = [];
  for (const input of INPUTS) walk(path.join(root, input), files);
  const h = createHash("sha256");
  for (const f of files) h.update(path.relative(root, f)).update("\0").update(readFileSync(f)).update("\0");
  return h.digest("hex");
}

/** Builds the dashboard when there is no build or the sources changed since the last one. */
export async function ensureBuilt(root: string, log: (line: string) => void): Promise<void> {
  const stamp = path.join(root, ".next", "bulkhead-source-hash");
  const fingerprint = sourceFingerprint(root);
  if (existsSync(path.join(root, ".next", "BUILD_ID")) && existsSync(stamp) && readFileSync(stamp, "utf8") === fingerprint) return;
  log("Building the dashboard (first start or sources changed; this takes a minute or two)...");
  const nextBin = path.join(root, "node_modules", "next", "dist", "bin", "next");
  const code = await new Promise<number>((resolve) => {
    // The build needs no secret. Its output comes through this process, not straight to the
    // launcher's own output: written there by the build, a closed pipe (`npm start | head`) or a
    // full disk where the output was redirected failed the build's own writes and so the build.
    // Here what cannot be written is dropped (cli/output.ts) and the build goes on.
    const colour = process.stdout.isTTY ? { FORCE_COLOR: "1" } : {};
    const child = spawn(process.execPath, [nextBin, "build"], { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...publicEnvironment(), NEXT_TELEMETRY_DISABLED: "1", ...colour } });
    const relay = (to: NodeJS.WriteStream) => (chunk: Buffer) => {
      if (!outputGone(to)) to.write(chunk);
    };
    child.stdout.on("data", relay(process.stdout));
    child.stderr.on("data", relay(process.stderr));
    child.on("close", (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new Error("The dashboard build failed (see the output above).");
  writeFileSync(stamp, fingerprint);
}
