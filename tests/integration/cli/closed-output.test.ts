import { spawn } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runningEmbeddedPid } from "@/cli/runtime/database";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { bulkProxyDecisions } from "../../support/audit-events";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { freePort } from "../../support/free-port";

/**
 * A CLI command whose reader goes away (`bulkhead audit export | head`, a closed terminal). The
 * next write failed with EPIPE, which ended the process on the spot: before the command's own
 * cleanup, so an embedded PostgreSQL it had started for itself was left running on the data
 * folder. The command now finishes (its output dropped) and stops what it started; an export to
 * standard output that could not be written whole says so and fails.
 */
function run(args: string[], env: Record<string, string | undefined>, close: { stdout: boolean; stderr: boolean }): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, ["bin/bulkhead.mjs", ...args], { env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  // The reader goes away before the command writes anything.
  if (close.stdout) child.stdout!.destroy();
  else child.stdout!.resume();
  if (close.stderr) child.stderr!.destroy();
  else child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal, stderr })));
}

describe("a CLI command whose output's reader went away", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-closed-out-"));
    await chmod(dir, 0o711); // the embedded server runs as the postgres user when the tests run as root
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("finishes and stops the embedded database it started for itself", async () => {
    const dataDir = path.join(dir, "data");
    const env = { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: dataDir, BULKHEAD_PG_PORT: String(await freePort()) };
    // First start of the folder: the setup's lines go to standard error, the answer to standard output.
    const first = await run(["agent", "list"], env, { stdout: true, stderr: true });
    const left = runningEmbeddedPid(dataDir);
    if (left) process.kill(left, "SIGKILL");
    expect(left, "an embedded PostgreSQL was left running on the data folder").toBeNull();
    expect(first).toMatchObject({ code: 0, signal: null });
    // And again on the folder set up.
    const again = await run(["agent", "list"], env, { stdout: true, stderr: false });
    expect(runningEmbeddedPid(dataDir)).toBeNull();
    expect(again.code, again.stderr).toBe(0);
  }, 180_000);

  describe("an audit export to standard output", () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await createTestDatabase();
      const client = new pg.Client({ connectionString: t.workerUrl });
      await client.connect();
      try {
        await bulkProxyDecisions(client, { agents: [{ id: "0f8fad5b-d9cb-469f-a165-70867728950e", name: "a" }], tasks: [{ id: "7c9e6679-7425-40de-944b-e07fc1f90ae7", agentId: "0f8fad5b-d9cb-469f-a165-70867728950e" }] }, 2_000);
      } finally {
        await client.end();
      }
    }, 120_000);
    afterAll(async () => {
      await t?.drop();
    });

    it("stops when its reader goes away and says the export is incomplete, without a crash", async () => {
      const env = { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: path.join(dir, "external"), BULKHEAD_MASTER_KEY: generateMasterKey(), ...databaseEnv(t) };
      const r = await run(["audit", "export"], env, { stdout: true, stderr: false });
      expect(r.signal).toBeNull();
      expect(r.stderr).toMatch(/^bulkhead audit: standard output was closed by its reader after \d+ bytes; the export is incomplete/m);
      expect(r.stderr).not.toMatch(/EPIPE|Unhandled|at .*\.js:\d+/);
      expect(r.stderr).not.toMatch(/^Exported the audit log/m);
      expect(r.code).toBe(1);
    }, 120_000);
  });
});
