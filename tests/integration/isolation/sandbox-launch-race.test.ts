import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../../support/isolation/stack";
import { sh } from "../../support/isolation/topology";

/**
 * Launchers started at the same moment. Each one first removes what crashed launchers of its
 * instance left behind; that cleanup must never take another launcher's sandbox that is still
 * being built (its namespace, its interfaces, its folder or its row) for a leftover.
 */
const DENY_ALL = "unlisted: deny\nrules: []\n";

// What each sandbox's command reports: the network namespace it runs in and the addresses it has.
// Then it waits at a barrier, a folder outside the sandboxes' private scratch (which each sandbox
// sees as the same folder): it leaves a file there and exits with its own status only once the
// round's three commands have all left theirs, so the three sandboxes are all built and live at
// once, however long each takes to build (a fixed wait of 6 s did that before, mostly waiting).
const REPORT = `
const fs = require("node:fs");
const os = require("node:os");
const [status, barrier, me] = process.argv.slice(1);
const addresses = Object.values(os.networkInterfaces()).flat().filter((a) => !a.internal && !a.address.startsWith("fe80")).map((a) => a.address);
console.log(JSON.stringify({ netns: fs.readlinkSync("/proc/self/ns/net"), addresses }));
fs.writeFileSync(barrier + "/" + me, "");
const deadline = Date.now() + 90000;
const wait = () => {
  if (fs.readdirSync(barrier).length >= 3) process.exit(Number(status));
  if (Date.now() > deadline) { console.error("the round's other commands never reached the barrier"); process.exit(99); }
  setTimeout(wait, 20);
};
wait();
`;

describe("sandboxes: launchers started at the same moment", () => {
  let s: Stack;
  let barriers: string | undefined;
  beforeAll(async () => {
    // Under /run, not /tmp: every sandbox has a /tmp of its own.
    barriers = mkdtempSync("/run/bulkhead-test-barrier-");
    chmodSync(barriers, 0o755);
    s = await startStack();
    await s.startWorker();
  }, 600_000);
  afterAll(async () => {
    await s?.close();
    if (barriers) rmSync(barriers, { recursive: true, force: true });
  });

  it.sequential("three sandbox runs started at once each get a sandbox of their own, run their command in it and return its status, and leave nothing behind", async () => {
    const inst = s.topo.instanceId;
    // Launchers started together still reach their cleanup and their building at moments that
    // differ by a few hundred milliseconds, one more than another from round to round; rounds
    // that also start them a little apart go through more of those interleavings.
    for (const [round, apart] of [0, 100, 250, 400].entries()) {
      const tasks = await Promise.all([0, 1, 2].map(() => s.newTask(DENY_ALL)));
      const statuses = tasks.map((_, i) => 20 + 10 * round + i);
      const barrier = path.join(barriers!, `round-${round}`);
      mkdirSync(barrier);
      chmodSync(barrier, 0o777);
      const runs = await Promise.all(
        tasks.map(async (task, i) => {
          await new Promise((r) => setTimeout(r, i * apart));
          return s.topo.bulkhead(["sandbox", "run", "--task", task.taskId, "--", process.execPath, "-e", REPORT, String(statuses[i]), barrier, `launcher-${i}`], s.env(), 120_000);
        }),
      );
      const reports: Array<{ netns: string; addresses: string[] }> = [];
      for (const [i, run] of runs.entries()) {
        expect(run.code, `launcher ${i} of round ${round}: ${run.stderr}`).toBe(statuses[i]);
        reports.push(JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as { netns: string; addresses: string[] });
      }
      // Three namespaces, each command in the one of its own task's sandbox, at that sandbox's addresses.
      expect(new Set(reports.map((r) => r.netns)).size, `${JSON.stringify(reports)}\n${runs.map((r) => r.stderr).join("\n")}`).toBe(3);
      for (const [i, task] of tasks.entries()) {
        const rows = await s.t.db.sandbox.findMany({ where: { taskId: task.taskId }, select: { addresses: true, removedAt: true, removedReason: true } });
        expect(rows, JSON.stringify(rows)).toHaveLength(1);
        expect([...reports[i]!.addresses].sort()).toEqual(rows[0]!.addresses.split(" ").sort());
        // Torn down by its own launcher when its command exited, not cleaned up by another one.
        expect(rows[0]!.removedAt).not.toBeNull();
        expect(rows[0]!.removedReason).toBe(`the command exited with ${statuses[i]}`);
      }
    }
    // Nothing is left: no namespace, interface, folder or live row of the instance.
    expect((await sh("ip", ["netns", "list"])).stdout).not.toContain(`bh-${inst}-`);
    expect((await sh("ip", ["-n", s.topo.host, "link", "show"])).stdout).not.toContain(`bh${inst}h`);
    // (The instance's lock file, bh-<instance>-lock, stays: it is the lock.)
    for (const dir of ["/run/bulkhead-sandbox", "/etc/netns"]) {
      expect(existsSync(dir) ? readdirSync(dir).filter((e) => e.startsWith(`bh-${inst}-`) && e !== `bh-${inst}-lock`) : []).toEqual([]);
    }
    expect(await s.t.db.sandbox.count({ where: { instanceId: inst, removedAt: null } })).toBe(0);
  }, 600_000);

  it.sequential("a launcher whose sandbox is removed under it (its namespace deleted) kills the command and exits with 125 saying so, instead of waiting for it", async () => {
    const task = await s.newTask(DENY_ALL);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", task.taskId, "--", "sleep", "1197"], s.env());
    const exited = new Promise<number | null>((r) => (launcher.exitCode !== null ? r(launcher.exitCode) : launcher.once("exit", r)));
    try {
      const box = await s.liveSandbox(task.taskId, launcher);
      expect((await sh("ip", ["netns", "del", box.name])).code).toBe(0);
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running after 15 s"), 15_000))]);
      expect(code, launcher.output.stderr).toBe(125);
      expect(launcher.output.stderr).toMatch(/removed under its launcher: its network namespace bh-\S+ is gone/);
      expect((await sh("pgrep", ["-f", "sleep 1197"])).stdout.trim()).toBe("");
      expect((await s.t.db.sandbox.findUnique({ where: { id: box.id } }))?.removedAt).not.toBeNull();
    } finally {
      launcher.kill("SIGKILL");
      await exited;
    }
  }, 300_000);
});
