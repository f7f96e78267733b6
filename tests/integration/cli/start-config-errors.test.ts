import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCompiledCli } from "../../support/compiled-cli";

/**
 * `bulkhead start` with several variables wrong, the dashboard's and the worker's: one refusal
 * lists them all (it listed the dashboard's, and the worker's only once those were fixed), names
 * each, never shows a value, and nothing starts (no data folder, no database).
 */
describe("bulkhead start with a wrong environment", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "bh-start-config-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("lists every wrong variable of every process in one refusal and starts nothing", async () => {
    const data = path.join(dir, "data");
    const r = await runCompiledCli(["start"], {
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        BULKHEAD_DATA_DIR: data,
        BULKHEAD_ISOLATION: "off",
        BULKHEAD_APP_PORT: "70000",
        BULKHEAD_SESSION_HOURS: "secret-looking-value",
        BULKHEAD_HOLD_TIMEOUT_SECONDS: "5m",
        BULKHEAD_MAX_CONNECTIONS: "lots",
      },
    });
    expect(r.code).not.toBe(0);
    const problems = r.stderr.split("\n").filter((l) => l.startsWith("  - "));
    expect(problems.map((l) => l.slice(4).split(" ")[0]).sort()).toEqual(["BULKHEAD_APP_PORT", "BULKHEAD_HOLD_TIMEOUT_SECONDS", "BULKHEAD_MAX_CONNECTIONS", "BULKHEAD_SESSION_HOURS"]);
    expect(r.stderr).toContain("Bulkhead configuration is invalid");
    expect(r.stderr).not.toContain("secret-looking-value");
    expect(r.stderr).not.toContain("70000");
    expect(existsSync(data)).toBe(false);
  }, 60_000);
});
