import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { commandLine, DATA_FOLDER_LOCK, DataFolderBusyError, processStartTime, takeDataFolder, takeDataFolderWhenFree } from "@/cli/runtime/data-folder-lock";

describe("the data folder lock", () => {
  let other: ChildProcess;
  const dirs: string[] = [];
  const folder = () => {
    const dir = mkdtempSync(path.join(tmpdir(), "bulkhead-lock-"));
    dirs.push(dir);
    return dir;
  };
  /** Writes a lock as another process would have taken it. */
  const lockAs = (dir: string, owner: { pid: number; startedAt: string | null; command: string }) => writeFileSync(path.join(dir, DATA_FOLDER_LOCK), `${JSON.stringify(owner)}\n`);
  const ownerOf = (dir: string) => JSON.parse(readFileSync(path.join(dir, DATA_FOLDER_LOCK), "utf8")) as { pid: number; command: string };

  beforeAll(async () => {
    // A live process that is not this one, to own locks.
    other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 120000)"], { stdio: "ignore" });
    await new Promise((r) => other.once("spawn", r));
  });
  afterAll(() => {
    other.kill("SIGKILL");
  });
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("is taken on a free folder (created if missing) and released", () => {
    const dir = path.join(folder(), "data");
    const release = takeDataFolder(dir, "start");
    expect(ownerOf(dir)).toMatchObject({ pid: process.pid, command: "start" });
    release();
    expect(existsSync(path.join(dir, DATA_FOLDER_LOCK))).toBe(false);
    release(); // twice is harmless
  });

  it("refuses while another live process holds it, naming it, and leaves its lock alone", () => {
    const dir = folder();
    const owner = { pid: other.pid!, startedAt: processStartTime(other.pid!), command: "start" };
    expect(owner.startedAt).not.toBeNull();
    lockAs(dir, owner);
    let error: unknown;
    try {
      takeDataFolder(dir, "start");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DataFolderBusyError);
    expect((error as Error).message).toBe(`Bulkhead is already running on the data folder ${dir} (bulkhead start, pid ${other.pid}). Stop it first (Ctrl-C where it runs), or give this one its own BULKHEAD_DATA_DIR.`);
    expect(() => takeDataFolder(dir, "bulkhead audit export")).toThrow(`Bulkhead (bulkhead start, pid ${other.pid}) is starting on the data folder ${dir} and its database is not up yet. Try again in a moment.`);
    lockAs(dir, { ...owner, command: "bulkhead audit export" });
    expect(() => takeDataFolder(dir, "start")).toThrow(`A bulkhead command (bulkhead audit export, pid ${other.pid}) is using the embedded database in ${dir}. Wait for it to finish, then try again.`);
    expect(ownerOf(dir).pid).toBe(other.pid);
  });

  // docs/architecture.md: a start meanwhile waits for a command that started the embedded
  // database for itself. It was refused ("Wait for it to finish, then try again").
  it("bulkhead start waits for a CLI command that holds the folder, says so once, then takes it; another start is refused at once", async () => {
    const dir = folder();
    const owner = { pid: other.pid!, startedAt: processStartTime(other.pid!), command: "bulkhead db migrate" };
    lockAs(dir, owner);
    const said: string[] = [];
    let taken = false;
    const taking = takeDataFolderWhenFree(dir, "start", (line) => said.push(line), 30_000).then((release) => {
      taken = true;
      return release;
    });
    await new Promise((r) => setTimeout(r, 1000));
    expect(taken).toBe(false);
    expect(ownerOf(dir).pid).toBe(other.pid);
    expect(said).toEqual([`Waiting for bulkhead db migrate (pid ${other.pid}) to finish: it is using the embedded database in ${dir}.`]);
    // The command ends and releases the folder.
    rmSync(path.join(dir, DATA_FOLDER_LOCK));
    const release = await taking;
    expect(ownerOf(dir)).toMatchObject({ pid: process.pid, command: "start" });
    expect(said).toHaveLength(1);
    release();

    lockAs(dir, { ...owner, command: "start" });
    await expect(takeDataFolderWhenFree(dir, "start", () => undefined, 30_000)).rejects.toThrow(`Bulkhead is already running on the data folder ${dir} (bulkhead start, pid ${other.pid})`);
    // A command that does not finish in time: refused, naming it.
    lockAs(dir, owner);
    await expect(takeDataFolderWhenFree(dir, "start", () => undefined, 300)).rejects.toThrow(`A bulkhead command (bulkhead db migrate, pid ${other.pid}) is using the embedded database in ${dir}.`);
  });

  it("takes over a lock whose owner is gone, whose pid now names another process, or that cannot be read", () => {
    const gone = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const cases: Array<[string, () => void]> = [
      ["a dead owner", () => lockAs(dir, { pid: gone.pid!, startedAt: null, command: "start" })],
      ["a reused pid (another start time)", () => lockAs(dir, { pid: other.pid!, startedAt: "1", command: "start" })],
      ["torn text", () => writeFileSync(path.join(dir, DATA_FOLDER_LOCK), '{"pid":')],
      ["not a pid", () => writeFileSync(path.join(dir, DATA_FOLDER_LOCK), '{"pid":-1}')],
    ];
    const dir = folder();
    return new Promise<void>((resolve) => gone.once("exit", () => resolve())).then(() => {
      for (const [what, write] of cases) {
        write();
        const release = takeDataFolder(dir, "start");
        expect(ownerOf(dir).pid, what).toBe(process.pid);
        release();
      }
    });
  });

  it("a release never removes a lock someone else took since", () => {
    const dir = folder();
    const release = takeDataFolder(dir, "start");
    lockAs(dir, { pid: other.pid!, startedAt: processStartTime(other.pid!), command: "start" });
    release();
    expect(ownerOf(dir).pid).toBe(other.pid);
  });

  it("is released when its process exits, and a killed owner's lock is taken over", async () => {
    const lockModule = path.resolve("cli/runtime/data-folder-lock.ts");
    // A child takes the folder, says so, then exits by itself (process.exit, as `bulkhead start`
    // does after Ctrl-C) or waits to be killed.
    const holder = (dir: string, exit: boolean) => {
      const code = `import { takeDataFolder } from ${JSON.stringify(lockModule)}; takeDataFolder(${JSON.stringify(dir)}, "start"); console.log("taken"); ${exit ? "process.exit(0);" : "setInterval(() => {}, 1000);"}`;
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
      const taken = new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (c: Buffer) => c.toString().includes("taken") && resolve());
        child.once("exit", (c) => reject(new Error(`exited ${c} before taking the folder`)));
      });
      return { child, taken };
    };
    const exits = folder();
    const a = holder(exits, true);
    await a.taken.catch(() => undefined);
    await new Promise((r) => (a.child.exitCode === null ? a.child.once("exit", r) : r(null)));
    expect(a.child.exitCode).toBe(0);
    expect(existsSync(path.join(exits, DATA_FOLDER_LOCK))).toBe(false);

    const killed = folder();
    const b = holder(killed, false);
    await b.taken;
    expect(() => takeDataFolder(killed, "start")).toThrow(DataFolderBusyError);
    b.child.kill("SIGKILL");
    await new Promise((r) => b.child.once("exit", r));
    expect(ownerOf(killed).pid).toBe(b.child.pid); // left behind by the kill
    const release = takeDataFolder(killed, "start");
    expect(ownerOf(killed).pid).toBe(process.pid);
    release();
  });

  it("says in a sentence why a data folder cannot be used", () => {
    const dir = folder();
    const file = path.join(dir, "a-file");
    writeFileSync(file, "");
    expect(() => takeDataFolder(file, "start")).toThrow(`The data folder ${file} (BULKHEAD_DATA_DIR) cannot be used: it is a file, not a folder.`);
    expect(() => takeDataFolder(path.join(file, "data"), "start")).toThrow(`The data folder ${path.join(file, "data")} (BULKHEAD_DATA_DIR) cannot be used: part of its path is a file, not a folder.`);
    // Node's recursive mkdir never returns under /proc; this must be an answer, not a hang.
    for (const bad of ["/proc/bulkhead-data", "/proc/bulkhead/data/deeper"]) {
      expect(() => takeDataFolder(bad, "start")).toThrow(`The data folder ${bad} (BULKHEAD_DATA_DIR) cannot be used: no folder can be created there.`);
    }
    // Missing levels are created, owner-only.
    const deep = path.join(dir, "a", "b", "c");
    takeDataFolder(deep, "start")();
    expect(statSync(path.join(dir, "a")).mode & 0o777).toBe(0o700);
    expect(statSync(deep).isDirectory()).toBe(true);
  });

  it("names a command by its words, not its arguments", () => {
    expect(commandLine(["audit", "export", "--format", "csv"])).toBe("bulkhead audit export");
    expect(commandLine(["task", "end", "6f1c0c7e-0000-4000-8000-000000000000"])).toBe("bulkhead task end");
    expect(commandLine(["--json", "agent", "list"])).toBe("bulkhead agent list");
    expect(commandLine(["sandbox", "--", "run"])).toBe("bulkhead sandbox");
    expect(commandLine([])).toBe("bulkhead");
  });
});
