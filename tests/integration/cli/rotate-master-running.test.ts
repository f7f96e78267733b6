import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATA_FOLDER_LOCK, processStartTime } from "@/cli/runtime/data-folder-lock";
import { generateMasterKey, parseMasterKey } from "@/lib/crypto/envelope";
import { establishProcessKeys } from "@/lib/keys/establish";
import { runCompiledCli } from "../../support/compiled-cli";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";

/**
 * `keys rotate-master` while `bulkhead start` runs on the same data folder: the running dashboard
 * and worker hold keys derived from the current master key, and after the switch they could no
 * longer mint tokens, write secrets or start again. The rotation is refused before it changes
 * anything; with the folder free, it runs.
 */
describe("keys rotate-master next to a running Bulkhead", () => {
  let t: TestDatabase;
  let dir = "";
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    t = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), "bh-rotate-running-"));
    // A database Bulkhead has started on once: its keys are recorded under this folder's master key.
    const master = generateMasterKey();
    await writeFile(path.join(dir, "master.key"), `${master}\n`, { mode: 0o600 });
    await establishProcessKeys(t.db, parseMasterKey(master));
  });
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    if (dir) await rm(dir, { recursive: true, force: true });
    await t?.drop();
  });

  const rotate = () => runCompiledCli(["keys", "rotate-master"], { env: { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: dir, ...databaseEnv(t) } });

  it("is refused while bulkhead start holds the folder, naming it, and changes nothing", async () => {
    const keyBefore = await readFile(path.join(dir, "master.key"), "utf8");
    // A running `bulkhead start`, as the folder shows it: a live process holding the lock.
    const start = spawn("sleep", ["600"], { stdio: "ignore" });
    children.push(start);
    await writeFile(path.join(dir, DATA_FOLDER_LOCK), `${JSON.stringify({ pid: start.pid, startedAt: processStartTime(start.pid!), command: "start" })}\n`, { mode: 0o600 });

    const run = await rotate();
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(`Bulkhead is running on the data folder ${dir} (bulkhead start, pid ${start.pid})`);
    expect(run.stderr).toContain("Nothing was changed.");
    expect(run.stdout).toBe("");
    expect(await readFile(path.join(dir, "master.key"), "utf8")).toBe(keyBefore);
    expect(existsSync(path.join(dir, "master.key.next"))).toBe(false);
    expect(await t.db.auditEvent.count({ where: { type: { startsWith: "master_key." } } })).toBe(0);

    start.kill("SIGKILL");
    await new Promise((r) => start.once("exit", r));
  }, 60_000);

  it("runs once that Bulkhead has stopped (its lock left behind is stale)", async () => {
    const keyBefore = await readFile(path.join(dir, "master.key"), "utf8");
    const run = await rotate();
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Master key rotated: /);
    expect(await readFile(path.join(dir, "master.key"), "utf8")).not.toBe(keyBefore);
    expect(await t.db.auditEvent.count({ where: { type: "master_key.rotated" } })).toBe(1);
  }, 120_000);
});
