import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `bulkhead` (and so `npm start`) where its packages are not installed: a checkout before `npm
 * ci`, or one whose install was interrupted, which happens when an operator switches versions in
 * place. It printed Node's ERR_MODULE_NOT_FOUND with its stack; it now says which package is
 * missing and what to run, and exits 1.
 */
describe("the bulkhead command without its packages", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "bulkhead-no-packages-"));
    for (const part of ["bin", "scripts", "package.json"]) cpSync(path.resolve(part), path.join(dir, part), { recursive: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("names the missing package and the command that installs it, with no stack trace", () => {
    for (const args of [["--help"], ["start"]]) {
      const r = spawnSync(process.execPath, [path.join(dir, "bin", "bulkhead.mjs"), ...args], { encoding: "utf8", timeout: 30_000, env: { ...process.env, NODE_PATH: "" } });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/^\[bulkhead\] The package esbuild Bulkhead needs is not installed: .* Run `npm ci` in .*bulkhead-no-packages-/);
      expect(r.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|node:internal|    at /);
    }
  });
});
