import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DATA_FOLDER_LOCK, processStartTime } from "@/cli/runtime/data-folder-lock";
import type { EmbeddedDatabase } from "@/lib/db/embedded";
import { startTestPostgres } from "../../support/test-postgres";

/**
 * Two CLI commands on one data folder with no `bulkhead start`: the first starts the embedded
 * server for itself and stops it when it ends. The second must not use that server (it would lose
 * it mid-command); it waits, then starts its own.
 */
describe("a CLI command next to another that started the embedded database for itself", () => {
  const children: ChildProcess[] = [];
  let dir = "";
  let server: EmbeddedDatabase | null = null;
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("waits for it to finish instead of using its server, says so, then starts its own", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-sharing-"));
    await chmod(dir, 0o711); // the server runs as the postgres user when the tests run as root
    const dataDir = path.join(dir, "data");
    // The first command, as it looks from outside: a live process owning the folder, and the
    // embedded server it started running on the folder.
    server = await startTestPostgres({ dataDir });
    const first = spawn("sleep", ["600"], { stdio: "ignore" });
    children.push(first);
    await writeFile(path.join(dataDir, DATA_FOLDER_LOCK), `${JSON.stringify({ pid: first.pid, startedAt: processStartTime(first.pid!), command: "bulkhead task list" })}\n`, { mode: 0o600 });

    let stdout = "";
    let stderr = "";
    const second = spawn(process.execPath, ["bin/bulkhead.mjs", "agent", "list"], {
      env: { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: dataDir, BULKHEAD_PG_PORT: String(server.port) } as unknown as NodeJS.ProcessEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(second);
    second.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
    second.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => second.once("exit", (code) => r(code)));

    await expect.poll(() => stderr, { timeout: 30_000, interval: 100 }).toContain(`Waiting for bulkhead task list (pid ${first.pid}) to finish: it started the embedded database for itself.`);
    await new Promise((r) => setTimeout(r, 1500));
    expect(second.exitCode, `${stdout}\n${stderr}`).toBeNull();

    // The first command ends: its server stops, then the folder is free.
    await server.stop();
    server = null;
    first.kill("SIGTERM");
    expect(await exited, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toContain("No agents");
  }, 180_000);
});
