import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const namespaces = () =>
  spawnSync("ip", ["netns", "list"], { encoding: "utf8" })
    .stdout.split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter(Boolean);
const replayFolders = () => readdirSync(tmpdir()).filter((n) => n.startsWith("bh-replay-"));
/** Command lines of every process that names `text` (the throwaway PostgreSQL names its data folder). */
const processesNaming = (text: string) =>
  readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
      } catch {
        return "";
      }
    })
    .filter((cmd) => cmd.includes(text));

/**
 * `bulkhead replay` stopped halfway (a CI job's timeout, a closed terminal, Ctrl-C): the network
 * namespaces and rules it made, its throwaway PostgreSQL and its folders must all go, and it
 * exits as a shell reports the signal. SIGTERM left the PostgreSQL running and the agents'
 * workspace folder behind. Runs alone (integration-serial): it tells its namespaces from others by
 * when they appeared.
 */
describe("bulkhead replay interrupted by a signal", () => {
  let dataDir = "";
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("removes its namespaces, its PostgreSQL and its folders, and exits 143", async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "bh-interrupted-"));
    const before = new Set(namespaces());
    const foldersBefore = new Set(replayFolders());
    const replay = spawn(process.execPath, ["bin/bulkhead.mjs", "replay", "--no-record"], { env: { PATH: process.env.PATH, HOME: dataDir, BULKHEAD_DATA_DIR: dataDir } as unknown as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    replay.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    replay.stdout!.resume();
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => replay.once("exit", (code, signal) => r({ code, signal })));
    try {
      // The first cell has been played: namespaces, the throwaway database and a worker are up.
      await expect.poll(() => stderr, { timeout: 240_000, interval: 250 }).toMatch(/^(ok|DIFF) /m);
      const made = namespaces().filter((n) => !before.has(n));
      expect(made.length, stderr).toBeGreaterThan(0);
      const database = /Replay database ready \(embedded PostgreSQL in (\S+)\)\./.exec(stderr)?.[1];
      expect(database, stderr).toBeDefined();
      expect(processesNaming(database!).length).toBeGreaterThan(0);
      const folders = replayFolders().filter((n) => !foldersBefore.has(n));
      expect(folders.length).toBeGreaterThanOrEqual(2); // the database's and the agents' workspace

      replay.kill("SIGTERM");
      expect(await exited, stderr).toEqual({ code: 143, signal: null });
      expect(namespaces().filter((n) => made.includes(n))).toEqual([]);
      expect(processesNaming(database!)).toEqual([]);
      expect(existsSync(database!)).toBe(false);
      expect(replayFolders().filter((n) => folders.includes(n))).toEqual([]);
    } finally {
      if (replay.exitCode === null) replay.kill("SIGKILL");
    }
  }, 300_000);
});
