import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/**
 * `bulkhead start` builds the dashboard on a first start or after a change. The build wrote
 * straight to the launcher's output: with that output on a full disk (or a pipe whose reader went
 * away) the build's own writes failed and failed the build, and with it the start. The build's
 * output now comes through the launcher, which drops what cannot be written. A stand-in `next`
 * (it prints a lot, then exits 0) plays the build here; the launcher's side runs as it ships.
 */
describe("the dashboard build with an output that takes no write", () => {
  const root = mkdtempSync(path.join(tmpdir(), "bh-build-output-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("still builds: what it prints is dropped, the build is not failed for it", async () => {
    mkdirSync(path.join(root, "node_modules", "next", "dist", "bin"), { recursive: true });
    writeFileSync(
      path.join(root, "node_modules", "next", "dist", "bin", "next"),
      [`const line = "compiling ".repeat(20) + "\\n";`, `for (let i = 0; i < 2000; i++) { process.stdout.write(line); process.stderr.write(line); }`, `require("fs").mkdirSync(".next", { recursive: true });`, `require("fs").writeFileSync(".next/BUILD_ID", "x");`].join("\n"),
    );
    const result = path.join(root, "result.json");
    const script = path.join(root, "run.ts");
    writeFileSync(
      script,
      [
        `import { writeFileSync } from "node:fs";`,
        `import { guardOutput } from ${JSON.stringify(path.resolve("cli/output.ts"))};`,
        `import { ensureBuilt } from ${JSON.stringify(path.resolve("cli/runtime/build.ts"))};`,
        `guardOutput();`,
        `ensureBuilt(${JSON.stringify(root)}, () => undefined).then(`,
        `  () => writeFileSync(${JSON.stringify(result)}, JSON.stringify({ built: true })),`,
        `  (error) => writeFileSync(${JSON.stringify(result)}, JSON.stringify({ built: false, error: String(error) })),`,
        `);`,
      ].join("\n"),
    );
    const full = openSync("/dev/full", "w");
    const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: process.cwd(), stdio: ["ignore", full, full] });
    closeSync(full);
    expect(await new Promise((resolve) => child.on("close", resolve))).toBe(0);
    expect(JSON.parse(readFileSync(result, "utf8"))).toEqual({ built: true });
    expect(existsSync(path.join(root, ".next", "bulkhead-source-hash"))).toBe(true);
  }, 60_000);
});
