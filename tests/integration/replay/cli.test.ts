import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

/** `bulkhead replay` refuses clearly, before making anything, when it cannot create namespaces. */
describe("bulkhead replay without root", () => {
  it("exits 2 with a message that says it needs root, before starting anything", () => {
    const run = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i", "PATH=/usr/bin:/bin", "HOME=/tmp", process.execPath, "bin/bulkhead.mjs", "replay", "--json"], { timeout: 60_000 });
    expect(run.status, run.stderr.toString()).toBe(2);
    const error = JSON.parse(run.stderr.toString().trim().split("\n").pop() ?? "{}") as { error?: { code?: string; message?: string } };
    expect(error.error?.code).toBe("usage");
    expect(error.error?.message).toMatch(/must run as root/);
    expect(run.stdout.toString()).toBe("");
    // Refused before the throwaway database or any namespace: nothing was started to print about.
    expect(run.stderr.toString()).not.toMatch(/Replay database ready/);
  });
});
