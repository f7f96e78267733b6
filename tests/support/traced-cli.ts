import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The npm packages (by name) a run of the compiled `bulkhead` loaded, from
 * tests/support/module-trace.mjs: those resolved from node_modules, and those the build compiled
 * into the chunks the run loaded (scripts/cli-build.mjs bundles a few pure-JavaScript packages and
 * writes which chunk holds which, `bundled-packages.json`, in each build's folder).
 */
export function packagesIn(trace: string): Set<string> {
  const names = new Set<string>();
  const manifests = new Map<string, Record<string, string[]>>();
  for (const url of trace.split("\n")) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (m) {
      names.add(m[1]!);
      continue;
    }
    const built = /^(file:\/\/.*\/dist\/cli\/[^/]+)\/(.+)$/.exec(url);
    if (!built) continue;
    const [, folder, file] = built as unknown as [string, string, string];
    if (!manifests.has(folder)) manifests.set(folder, JSON.parse(readFileSync(fileURLToPath(`${folder}/bundled-packages.json`), "utf8")) as Record<string, string[]>);
    for (const name of manifests.get(folder)![file] ?? []) names.add(name);
  }
  return names;
}

/** Runs the compiled `bulkhead` (bin/bulkhead.mjs) in a child process, recording every module it loads in `traceFile`. */
export function bulkheadTraced(args: string[], env: Record<string, string>, traceFile: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: process.env.HOME, BULKHEAD_ISOLATION: "off", ...env, MODULE_TRACE_FILE: traceFile };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", path.resolve("tests/support/module-trace.mjs"), path.resolve("bin/bulkhead.mjs"), ...args],
      { env: childEnv as NodeJS.ProcessEnv, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}
