import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DATA_FOLDER_LOCK, processStartTime } from "@/cli/runtime/data-folder-lock";
import type { EmbeddedDatabase } from "@/lib/db/embedded";
import { freePort } from "../../support/free-port";
import { startTestPostgres } from "../../support/test-postgres";

/**
 * A data folder copied while Bulkhead ran on it (a backup taken live, `cp -a`) carries the
 * original's `bulkhead.lock` and `postgres/postmaster.pid`, which name live processes of the
 * original. Commands in the copy took the original's server for the copy's own: they read and
 * wrote the original's database (production, where the copy was meant as a backup to check), and
 * `bulkhead start` in the copy was refused as if Bulkhead ran on the copy. A command in the copy
 * now runs the copy's own server, on its own data.
 */
describe("a data folder copied while Bulkhead ran on it", () => {
  const children: ChildProcess[] = [];
  let dir = "";
  let server: EmbeddedDatabase | null = null;
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cli = (dataDir: string, port: number, args: string[]) =>
    spawnSync(process.execPath, ["bin/bulkhead.mjs", ...args], {
      env: { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: dataDir, BULKHEAD_PG_PORT: String(port), BULKHEAD_MASTER_KEY: Buffer.alloc(32, 7).toString("base64url") } as unknown as NodeJS.ProcessEnv,
      encoding: "utf8",
      timeout: 180_000,
      input: "",
    });

  it("commands in the copy use the copy's own database, never the original's", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-copied-"));
    await chmod(dir, 0o711); // the server runs as the postgres user when the tests run as root
    const original = path.join(dir, "original");
    const copy = path.join(dir, "copy");
    // The original, as `bulkhead start` leaves it: its server running, the folder held by a live launcher.
    server = await startTestPostgres({ dataDir: original });
    const launcher = spawn("sleep", ["600"], { stdio: "ignore" });
    children.push(launcher);
    await writeFile(path.join(original, DATA_FOLDER_LOCK), `${JSON.stringify({ pid: launcher.pid, startedAt: processStartTime(launcher.pid!), command: "start", folder: realpathSync(original) })}\n`, { mode: 0o600 });
    const made = cli(original, server.port, ["user", "create", "--email", "before-copy@example.com", "--role", "auditor"]);
    expect(made.status, made.stderr).toBe(0);

    // Copied live, then the original goes on.
    const cp = spawnSync("cp", ["-a", original, copy]);
    expect(cp.status).toBe(0);
    expect(await readFile(path.join(copy, "postgres", "postmaster.pid"), "utf8")).toContain(String(server.port));
    const after = cli(original, server.port, ["user", "create", "--email", "after-copy@example.com", "--role", "auditor"]);
    expect(after.status, after.stderr).toBe(0);

    // In the copy: its own server on its own port, its own users (the original's later one absent).
    const copyPort = await freePort();
    const listed = cli(copy, copyPort, ["user", "list"]);
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout).toContain("before-copy@example.com");
    expect(listed.stdout, "the copy's command read the original's database").not.toContain("after-copy@example.com");
    expect(listed.stderr).toMatch(/copied while its PostgreSQL ran: its postmaster\.pid named pid \d+, which serves .*original.*That file was removed/s);
    // A write in the copy stays in the copy.
    const written = cli(copy, copyPort, ["user", "create", "--email", "in-the-copy@example.com", "--role", "auditor"]);
    expect(written.status, written.stderr).toBe(0);
    const originals = cli(original, server.port, ["user", "list"]);
    expect(originals.stdout).toContain("after-copy@example.com");
    expect(originals.stdout, "the copy's command wrote into the original's database").not.toContain("in-the-copy@example.com");
    // The original's server still runs (nothing in the copy stopped it).
    const still = cli(original, server.port, ["user", "list"]);
    expect(still.status, still.stderr).toBe(0);
  }, 400_000);
});
