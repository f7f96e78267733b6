import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { processStartTime } from "@/lib/files/process-alive";
import { liveLockHolder, takeLock } from "@/proxy-worker/audit/wal/segments";

/**
 * The worker id's lock in the log's folder: a live owner keeps it, a dead one's is taken over,
 * and so is one whose pid now names another process (a pid reused after a crash).
 */
describe("the audit log's lock", () => {
  let dir: string;
  let other: ChildProcess | null = null;
  const lockFile = () => path.join(dir, "w.lock");
  const liveOther = async () => {
    other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60_000)"], { stdio: "ignore" });
    for (let i = 0; i < 200 && processStartTime(other.pid!) === null; i++) await new Promise((r) => setTimeout(r, 5));
    return other.pid!;
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-wal-lock-"));
  });
  afterEach(async () => {
    other?.kill("SIGKILL");
    other = null;
    await rm(dir, { recursive: true, force: true });
  });

  it("records its owner's pid and start time", async () => {
    const release = await takeLock(dir, "w");
    expect((await readFile(lockFile(), "utf8")).split("\n").slice(0, 2)).toEqual([String(process.pid), processStartTime(process.pid)]);
    await release();
  });

  it("refuses a lock held by a live process that started when the lock says", async () => {
    const pid = await liveOther();
    await writeFile(lockFile(), `${pid}\n${processStartTime(pid)}\n`);
    await expect(takeLock(dir, "w")).rejects.toThrow(new RegExp(`held by running process ${pid}`));
    expect(liveLockHolder(dir)).toBe(pid);
  });

  it("takes over a lock left by a crashed worker whose pid now names another live process", async () => {
    // The lock as this process writes it, left behind as if it had crashed; its pid since reused
    // by a live process (the test's parent, which started at another time).
    const release = await takeLock(dir, "w");
    const left = await readFile(lockFile(), "utf8");
    await release();
    expect(processStartTime(process.ppid)).not.toBe(processStartTime(process.pid));
    await writeFile(lockFile(), left.replace(String(process.pid), String(process.ppid)));
    expect(liveLockHolder(dir)).toBeNull();
    const again = await takeLock(dir, "w");
    expect((await readFile(lockFile(), "utf8")).split("\n")[0]).toBe(String(process.pid));
    await again();
  });

  it("takes over a dead owner's lock", async () => {
    const pid = await liveOther();
    const started = processStartTime(pid);
    other!.kill("SIGKILL");
    await new Promise((r) => other!.once("exit", r));
    other = null;
    await writeFile(lockFile(), `${pid}\n${started}\n`);
    const release = await takeLock(dir, "w");
    await release();
  });
});
