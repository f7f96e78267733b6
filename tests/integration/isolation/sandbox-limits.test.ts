import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, waitFor, type Stack } from "../../support/isolation/stack";
import { sh } from "../../support/isolation/topology";

/**
 * A sandbox cannot exhaust the machine it shares with the worker, the dashboard and the database:
 * its tmpfs home and scratch directories have a size (writing past it is ENOSPC), its processes
 * are in a cgroup of their own with a memory and a process limit (the kernel kills what goes over
 * the memory limit; forks past the process limit fail), the sandbox user cannot leave that cgroup
 * or raise its limits, and a dead launcher's cgroup goes with its namespace at the next cleanup.
 * No worker runs here: none of these commands uses the network.
 */
const DENY_ALL = "unlisted: deny\nrules: []\n";
const ROOT = path.resolve(import.meta.dirname, "../../..");

// Fills its home and every scratch directory, then creates empty files in /tmp until it may not.
const FILLER = `
const fs = require("node:fs");
const out = {};
for (const dir of [process.env.HOME, "/tmp", "/var/tmp", "/dev/shm"]) {
  const st = fs.statfsSync(dir);
  const r = out[dir] = { bytes: st.blocks * st.bsize, inodes: st.files };
  try { fs.writeFileSync(dir + "/fill", Buffer.alloc(8 * 1024 * 1024, 1)); r.wrote = "all"; } catch (e) { r.wrote = e.code; }
  fs.rmSync(dir + "/fill", { force: true });
  // Room again once the file is gone: the sandbox is still healthy.
  fs.writeFileSync(dir + "/after", "ok");
  r.after = fs.readFileSync(dir + "/after", "utf8");
}
let n = 0;
try { for (; n < 20000; n++) fs.writeFileSync("/tmp/f" + n, ""); out.inodes = { code: "none", n }; } catch (e) { out.inodes = { code: e.code, n }; }
console.log(JSON.stringify(out));
`;

// Allocates (and touches) 256 MiB, 8 MiB at a time: bounded, so that without a limit it simply succeeds.
const HOG = `const a = []; for (let i = 0; i < 32; i++) a.push(Buffer.alloc(8 << 20, 1)); console.log("allocated " + a.length * 8 + " MiB");`;

// A fork bomb bounded at 2^9 processes (so that without a limit it cannot harm the machine): each
// level starts two copies of the next, the leaves sleep a moment.
const BOMB = `b() { if [ "$1" -gt 0 ]; then b $(($1 - 1)) & b $(($1 - 1)) & wait; else sleep 2.137; fi; }; b 8; echo bomb-done`;

// From inside: its cgroup (as /proc says) and what it gets trying to leave it or raise its limits.
const ESCAPER = `
const fs = require("node:fs");
const lines = fs.readFileSync("/proc/self/cgroup", "utf8").trim().split("\\n");
const memory = lines.find((l) => l.split(":")[1] === "memory").split(":")[2];
const pids = lines.find((l) => l.split(":")[1] === "pids").split(":")[2];
const tries = {};
const attempt = (file, value) => { try { fs.writeFileSync(file, value); tries[file] = "written"; } catch (e) { tries[file] = e.code; } };
attempt("/sys/fs/cgroup/memory" + memory + "/memory.limit_in_bytes", "-1");
attempt("/sys/fs/cgroup/memory" + require("node:path").dirname(memory) + "/cgroup.procs", String(process.pid));
attempt("/sys/fs/cgroup/pids" + pids + "/pids.max", "max");
attempt("/sys/fs/cgroup/pids/cgroup.procs", String(process.pid));
console.log(JSON.stringify({ memory, pids, tries }));
setTimeout(() => undefined, 1_234_000);
`;

/** The sandbox cgroups of this run's instance that exist now, in both hierarchies. */
function ownCgroups(instanceId: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const name of entries) {
      if (name.startsWith(`bulkhead-${instanceId}-`)) found.push(path.join(dir, name));
      else if (depth < 3) walk(path.join(dir, name), depth + 1);
    }
  };
  walk("/sys/fs/cgroup/memory", 0);
  walk("/sys/fs/cgroup/pids", 0);
  return found;
}

/** The directories of a process's memory and pids cgroups. */
function cgroupDirsOf(pid: number): { memory: string; pids: string } {
  const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").trim().split("\n");
  const of = (c: string) => lines.find((l) => l.split(":")[1] === c)!.split(":")[2]!;
  return { memory: path.join("/sys/fs/cgroup/memory", of("memory")), pids: path.join("/sys/fs/cgroup/pids", of("pids")) };
}

/** Processes whose command line has `pattern`; `sandboxed`: only the sandbox user's (not the launcher, whose arguments have it too). */
/** Gone, or a zombie (killed, waiting for whoever inherited it to reap it). */
function dead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

const pgrep = async (pattern: string, sandboxed = true) => (await sh("pgrep", [...(sandboxed ? ["-u", "65534"] : []), "-f", pattern])).stdout.split(/\s+/).filter((p) => /^[0-9]+$/.test(p)).map(Number);

describe("sandboxes: a sandbox cannot exhaust its machine", () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
  }, 600_000);
  afterAll(async () => {
    // Whatever a failed test left: its processes, then its cgroups (only this run's instance's).
    for (const marker of ["sleep 2.137", "1_234_000", "sleep 1233.7", "sleep 1233.8"]) for (const pid of await pgrep(marker, false)) process.kill(pid, "SIGKILL");
    await s?.close();
    for (const dir of s ? ownCgroups(s.topo.instanceId) : []) {
      for (const pid of readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) process.kill(Number(pid), "SIGKILL");
      await new Promise((r) => setTimeout(r, 100));
      await sh("rmdir", [dir]);
    }
  }, 120_000);

  const run = async (flags: string[], command: string[], extra: Record<string, string> = {}) => {
    const task = await s.newTask(DENY_ALL);
    return { task, ...(await s.topo.bulkhead(["sandbox", "run", "--task", task.taskId, ...flags, "--", ...command], s.env(extra), 120_000)) };
  };

  it("refuses limits that are not limits, naming the flag or variable, before making anything", async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [["--memory", "0"], {}, /--memory must be a size such as 512MiB or 2GiB; "0" would mean no limit/],
      [["--pids", "lots"], {}, /--pids must be a whole number of processes/],
      [["--home-size", "1GB"], {}, /--home-size: write 1GiB \(sizes are binary/],
      [["--scratch-size", "unlimited"], {}, /--scratch-size must be a size .* would mean no limit/],
      [["--no-resource-limits", "--memory", "1GiB"], {}, /not both/],
      [[], { BULKHEAD_SANDBOX_MEMORY: "max" }, /BULKHEAD_SANDBOX_MEMORY must be a size such as 512MiB/],
    ];
    const results = await Promise.all(cases.map(([flags, env]) => run(flags, ["true"], env)));
    for (const [i, r] of results.entries()) {
      expect(r.code, `${cases[i]![0].join(" ")}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr).toMatch(cases[i]![2]);
      expect(r.stderr).not.toMatch(/ready at/);
      expect(await s.t.db.sandbox.count({ where: { taskId: r.task.taskId } })).toBe(0);
    }
  }, 180_000);

  it("writing past the home's or a scratch directory's size gets ENOSPC, and the sandbox goes on", async () => {
    const r = await run(["--home-size", "4MiB", "--scratch-size", "2MiB"], [process.execPath, "-e", FILLER]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as Record<string, { bytes: number; inodes: number; wrote: string; after: string }> & { inodes: { code: string; n: number } };
    const home = Object.keys(out).find((k) => k.startsWith("/run/bulkhead-sandbox/"))!;
    expect(out[home], JSON.stringify(out)).toMatchObject({ bytes: 4 * 1024 * 1024, wrote: "ENOSPC", after: "ok" });
    for (const dir of ["/tmp", "/var/tmp", "/dev/shm"]) expect(out[dir], dir).toMatchObject({ bytes: 2 * 1024 * 1024, inodes: 512, wrote: "ENOSPC", after: "ok" });
    // Empty files cost no pages but an inode each: those are bounded too.
    expect(out.inodes.code).toBe("ENOSPC");
    expect(out.inodes.n).toBeLessThan(512);
    // The launcher says what it ran with, and the row keeps it.
    expect(r.stderr).toMatch(/limits in force: home tmpfs 4 MiB, scratch tmpfs 2 MiB each/);
    const row = await s.t.db.sandbox.findFirst({ where: { taskId: r.task.taskId }, select: { limits: true, removedReason: true } });
    expect(row?.removedReason).toBe("the command exited with 0");
    expect(row?.limits).toEqual({ homeBytes: 4 * 1024 * 1024, scratchBytes: 2 * 1024 * 1024, memoryBytes: 4 * 1024 ** 3, pids: 1024, enforcedBy: "cgroup v1" });
    const list = await s.topo.bulkhead(["sandbox", "list", "--all"], s.env());
    expect(list.stdout).toMatch(/limits: home 4 MiB, scratch 2 MiB each, memory 4 GiB, 1024 processes \(cgroup v1\)/);
  }, 180_000);

  it("a command that allocates past the memory limit is killed by the kernel in its cgroup, and the launcher says so", async () => {
    const r = await run(["--memory", "96MiB"], [process.execPath, "-e", HOG]);
    expect(r.stdout, r.stderr).not.toMatch(/allocated/);
    // The command did not finish (unshare, whose child the kernel killed, ends with an error of its own).
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/the kernel killed [0-9]+ process\(es\) of the sandbox for going over its memory limit of 96 MiB \(out of memory in its cgroup\)/);
    const row = await s.t.db.sandbox.findFirst({ where: { taskId: r.task.taskId }, select: { removedReason: true } });
    expect(row?.removedReason).toMatch(/over its memory limit of 96 MiB/);
    expect(ownCgroups(s.topo.instanceId)).toEqual([]);
  }, 180_000);

  it("a fork bomb stops at the process limit, and nothing of it is left", async () => {
    const task = await s.newTask(DENY_ALL);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", task.taskId, "--pids", "64", "--", "/bin/sh", "-c", BOMB], s.env());
    const exited = new Promise<number | null>((r) => launcher.once("exit", r));
    let most = 0;
    const sampler = setInterval(() => {
      for (const dir of ownCgroups(s.topo.instanceId).filter((d) => d.startsWith("/sys/fs/cgroup/pids/"))) {
        try {
          most = Math.max(most, Number(readFileSync(path.join(dir, "pids.current"), "utf8")));
        } catch {
          // gone
        }
      }
    }, 20);
    const code = await exited;
    clearInterval(sampler);
    expect(code, launcher.output.stderr).not.toBeNull();
    const refused = /the sandbox reached its limit of 64 processes \(([0-9]+) fork\(s\) refused\)/.exec(launcher.output.stderr);
    expect(refused, launcher.output.stderr).not.toBeNull();
    // The bomb went off (forks were refused at the limit), and no sample ever saw more than it.
    // A sample every 20 ms can miss a bomb that reaches the limit and dies between two of them.
    expect(Number(refused![1])).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(64);
    expect(await pgrep("sleep 2.137")).toEqual([]);
    expect(ownCgroups(s.topo.instanceId)).toEqual([]);
  }, 180_000);

  it("the sandbox user can neither leave its cgroup nor raise its limits, from inside or from the host", async () => {
    const task = await s.newTask(DENY_ALL);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", task.taskId, "--memory", "512MiB", "--pids", "128", "--", process.execPath, "-e", ESCAPER], s.env());
    const exited = new Promise<number | null>((r) => launcher.once("exit", r));
    try {
      const out = await waitFor("the escaper's report", async () => {
        if (launcher.exitCode !== null) throw new Error(launcher.output.stderr);
        const line = launcher.output.stdout.trim().split("\n").pop();
        return line ? (JSON.parse(line) as { memory: string; pids: string; tries: Record<string, string> }) : null;
      }, 120_000);
      // Its own cgroup, named after the sandbox; every write refused (the cgroup file systems are not even in its view).
      expect(out.memory).toMatch(new RegExp(`/bulkhead-${s.topo.instanceId}-[0-9]+-[a-z0-9]+$`));
      expect(Object.values(out.tries).every((v) => v !== "written"), JSON.stringify(out.tries)).toBe(true);
      const [pid] = await pgrep("1_234_000");
      const dirs = cgroupDirsOf(pid!);
      expect(dirs.memory).toMatch(new RegExp(`/bulkhead-${s.topo.instanceId}-`));
      // Root's files, which no one else may write.
      for (const file of [path.join(dirs.memory, "cgroup.procs"), path.join(dirs.memory, "memory.limit_in_bytes"), path.join(dirs.pids, "pids.max"), path.join(dirs.pids, "cgroup.procs")]) {
        const st = statSync(file);
        expect(st.uid, file).toBe(0);
        expect(st.mode & 0o022, file).toBe(0);
      }
      // Even with the files in view (from the host), the sandbox user cannot write them.
      const asUser = (script: string) => sh("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", script]);
      for (const [file, value] of [
        [path.join(path.dirname(dirs.memory), "cgroup.procs"), String(pid)],
        [path.join(dirs.memory, "memory.limit_in_bytes"), "-1"],
        [path.join(dirs.pids, "pids.max"), "max"],
        ["/sys/fs/cgroup/pids/cgroup.procs", String(pid)],
      ] as const) {
        const r = await asUser(`echo ${value} > ${file}`);
        expect(r.code, `${file}: ${r.stderr}`).not.toBe(0);
        expect(r.stderr).toMatch(/Permission denied/);
      }
      expect(readFileSync(path.join(dirs.memory, "memory.limit_in_bytes"), "utf8").trim()).toBe(String(512 * 1024 * 1024));
      expect(readFileSync(path.join(dirs.pids, "pids.max"), "utf8").trim()).toBe("128");
      expect(cgroupDirsOf(pid!)).toEqual(dirs);
    } finally {
      launcher.kill("SIGTERM");
      await exited;
    }
    expect(ownCgroups(s.topo.instanceId)).toEqual([]);
  }, 180_000);

  it("a SIGKILLed launcher's cgroup is removed by the next cleanup, also when its namespace is already gone", async () => {
    const launched = [];
    for (const marker of ["1233.7", "1233.8"]) {
      const task = await s.newTask(DENY_ALL);
      const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", task.taskId, "--", "sleep", marker], s.env());
      const box = await s.liveSandbox(task.taskId, launcher);
      const [pid] = await waitFor(`sleep ${marker}`, async () => {
        const pids = await pgrep(`sleep ${marker}`);
        return pids.length ? pids : null;
      });
      launched.push({ launcher, box, pid: pid!, dirs: cgroupDirsOf(pid!) });
    }
    for (const l of launched) {
      const exited = new Promise((r) => l.launcher.once("exit", r));
      l.launcher.kill("SIGKILL");
      await exited;
      expect(existsSync(l.dirs.memory) && existsSync(l.dirs.pids)).toBe(true);
    }
    // The second one as a launcher killed during its teardown leaves it: namespace and folder gone, cgroup not.
    const second = launched[1]!;
    expect((await sh("ip", ["netns", "del", second.box.name])).code).toBe(0);
    await sh("rm", ["-rf", `/run/bulkhead-sandbox/${second.box.name}`]);
    expect(() => process.kill(second.pid, 0)).not.toThrow();

    const cleanup = await s.topo.bulkhead(["sandbox", "cleanup"], s.env());
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(cleanup.stdout).toContain(launched[0]!.box.name);
    expect(cleanup.stdout).toContain(path.basename(second.dirs.memory));
    for (const l of launched) {
      expect(existsSync(l.dirs.memory), l.dirs.memory).toBe(false);
      expect(existsSync(l.dirs.pids), l.dirs.pids).toBe(false);
      expect(dead(l.pid), `process ${l.pid}`).toBe(true);
    }
    expect(ownCgroups(s.topo.instanceId)).toEqual([]);
  }, 300_000);

  it("where no cgroup can hold the limits the launch is refused, unless the limits were turned off by name", async () => {
    // The launcher in a mount namespace of its own with no cgroup file system mounted.
    const withoutCgroups = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = spawn("nsenter", [`--net=/run/netns/${s.topo.host}`, "--", "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", 'umount -l /sys/fs/cgroup && exec "$@"', "sh", process.execPath, path.join(ROOT, "bin/bulkhead.mjs"), ...args], { env: s.env(), cwd: ROOT });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
      });
    const refused = await s.newTask(DENY_ALL);
    const r = await withoutCgroups(["sandbox", "run", "--task", refused.taskId, "--", "true"]);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/refusing to start a sandbox without its memory and process limits: no cgroup can hold them here \(no cgroup v2 is mounted; cgroup v1 has no memory and no pids hierarchy/);
    expect(r.stderr).toMatch(/--no-resource-limits/);
    expect(await s.t.db.sandbox.count({ where: { taskId: refused.taskId } })).toBe(0);

    const allowed = await s.newTask(DENY_ALL);
    const ok = await withoutCgroups(["sandbox", "run", "--task", allowed.taskId, "--no-resource-limits", "--", "/bin/sh", "-c", "exit 7"]);
    expect(ok.code, ok.stderr).toBe(7);
    expect(ok.stderr).toMatch(/memory and processes: NOT LIMITED \(turned off with --no-resource-limits/);
    const row = await s.t.db.sandbox.findFirst({ where: { taskId: allowed.taskId }, select: { limits: true } });
    expect(row?.limits).toMatchObject({ memoryBytes: null, pids: null, enforcedBy: "off" });
  }, 180_000);

  it("sandbox verify gives up on a probe that does not finish in time, and says which limits are in force", async () => {
    const started = Date.now();
    const r = await s.topo.bulkhead(["sandbox", "verify"], s.env({ BULKHEAD_SANDBOX_VERIFY_TIMEOUT_SECONDS: "1" }), 120_000);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/self-test probe .* did not finish within 1 s \(BULKHEAD_SANDBOX_VERIFY_TIMEOUT_SECONDS\); it was killed/);
    expect(r.stdout).toMatch(/limits in force: home tmpfs 1 GiB, scratch tmpfs 512 MiB each \(\/tmp, \/var\/tmp, \/dev\/shm, \/run\/lock\); memory: 4 GiB, processes: 1024 \(cgroup v1, \/sys\/fs\/cgroup\/memory\/\S+\/bulkhead-/);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(ownCgroups(s.topo.instanceId)).toEqual([]);
  }, 180_000);
});
