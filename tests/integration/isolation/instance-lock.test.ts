import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { instanceLockFile, withInstanceLock } from "@/proxy-worker/isolation/instance-lock";

/**
 * The lock that building, tearing down and cleaning up sandboxes share (one per instance). A
 * launcher killed with SIGKILL while it holds it must not leave it held, and nothing the holder
 * starts (tools, the sandboxed command) may keep it after the holder is gone.
 */
const LOCK = fileURLToPath(new URL("../../../proxy-worker/isolation/instance-lock.ts", import.meta.url));
const instance = `q${randomBytes(2).toString("hex").slice(0, 3)}`;

// A holder in a process of its own: takes the lock, starts a long-lived child of its own, says
// so, and waits to be killed, on a promise nothing else references, collecting garbage all the
// while (the lock's open file must not be collected, and closed, from under a waiting holder).
const HOLDER = `
const { spawn } = require("node:child_process");
import(${JSON.stringify(LOCK)}).then((m) => m.withInstanceLock(process.argv[1], "test holder", () => {
  const child = spawn("sleep", ["60"], { stdio: "ignore", detached: true });
  console.log("held " + child.pid);
  setInterval(() => globalThis.gc(), 20);
  return new Promise(() => undefined);
}));
`;

function startHolder(): Promise<{ holder: ChildProcess; grandchild: number }> {
  const holder = spawn(process.execPath, ["--expose-gc", "--import", "tsx", "-e", HOLDER, instance], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    holder.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /held (\d+)/.exec(out);
      if (m) resolve({ holder, grandchild: Number(m[1]) });
    });
    holder.once("exit", (code) => reject(new Error(`the holder exited (${code}) before it held the lock: ${out}`)));
  });
}

describe("the sandbox lock of an instance", () => {
  const pids: number[] = [];
  afterAll(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    rmSync(instanceLockFile(instance), { force: true });
  });

  it("is exclusive, and a holder killed with SIGKILL leaves it free although a process it started still runs", async () => {
    const { holder, grandchild } = await startHolder();
    pids.push(holder.pid!, grandchild);
    // Held: another taker waits, then gives up naming the lock.
    await expect(withInstanceLock(instance, "a second taker", async () => "got it", 500)).rejects.toThrow(/held its sandbox lock/);
    const exited = new Promise((r) => holder.once("exit", r));
    holder.kill("SIGKILL");
    await exited;
    // What the holder started runs on; the lock went with the holder.
    expect(() => process.kill(grandchild, 0)).not.toThrow();
    const started = Date.now();
    expect(await withInstanceLock(instance, "the next taker", async () => "got it", 5000)).toBe("got it");
    expect(Date.now() - started).toBeLessThan(1000);
  }, 30_000);

  it("is refused, not waited for, when this process already holds it", async () => {
    await withInstanceLock(instance, "outer", async () => {
      await expect(withInstanceLock(instance, "inner", async () => undefined, 200)).rejects.toThrow(/already held by this process/);
    });
  });
});
