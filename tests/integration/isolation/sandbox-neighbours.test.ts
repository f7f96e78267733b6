import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endTask } from "@/lib/tasks/tasks";
import type net from "node:net";
import { exchangeOn, GATEWAY4, PLAIN, startStack, waitFor, type Stack } from "../../support/isolation/stack";
import { sh } from "../../support/isolation/topology";

/**
 * One sandbox against the others, from inside: every sandbox's command runs as the same user, so
 * a command that could see another sandbox's processes could read their environment, signal them,
 * ptrace them or take their sockets (pidfd_getfd) and speak with that sandbox's identity; and one
 * sandbox holding connections it never authenticates must not starve the worker for the others.
 */
const DENY_ALL = "unlisted: deny\nrules: []\n";
const PLAIN_READ = "unlisted: deny\nrules:\n  - service: plainapi\n    effects: [read]\n";
const SECRET = "neighbour-secret-5d1e9a";

// What the attacker runs in its own sandbox: everything it can learn about and do to the
// victim's processes (their host pids are its argument), and every process it can see at all.
const ATTACKER = `
const fs = require("node:fs");
const victims = JSON.parse(process.argv[1]);
const out = { signalled: [], environ: [], secretSeen: false, seen: [], mine: fs.readlinkSync("/proc/self/ns/net") };
for (const pid of victims) {
  try { process.kill(pid, 0); out.signalled.push(pid); } catch {}
  try { out.environ.push(fs.readFileSync("/proc/" + pid + "/environ", "latin1")); } catch {}
}
for (const entry of fs.readdirSync("/proc")) {
  if (!/^[0-9]+$/.test(entry)) continue;
  let net = null;
  try { net = fs.readlinkSync("/proc/" + entry + "/ns/net"); } catch {}
  try { if (fs.readFileSync("/proc/" + entry + "/environ", "latin1").includes(${JSON.stringify(SECRET)})) out.secretSeen = true; } catch {}
  out.seen.push({ pid: Number(entry), net });
}
console.log(JSON.stringify(out));
`;

describe("sandboxes: one sandbox against its neighbours", () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
    await s.startWorker();
  }, 600_000);
  afterAll(async () => {
    await s?.close();
  });

  it.sequential("a sandbox cannot see, signal or read another sandbox's processes (no way to take its identity), and the command's exit status still comes back", async () => {
    const victim = await s.newTask(DENY_ALL);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", victim.taskId, "--env", `AGENT_SECRET=${SECRET}`, "--", "sleep", "120"], s.env());
    try {
      const box = await s.liveSandbox(victim.taskId, launcher);
      const pids = (await sh("ip", ["netns", "pids", box.name])).stdout.split(/\s+/).filter((p) => /^[0-9]+$/.test(p)).map(Number);
      expect(pids.length).toBeGreaterThan(0);
      const attacker = await s.newTask(DENY_ALL);
      const run = await s.topo.bulkhead(["sandbox", "run", "--task", attacker.taskId, "--", process.execPath, "-e", ATTACKER, JSON.stringify(pids)], s.env());
      expect(run.code, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as { signalled: number[]; environ: string[]; secretSeen: boolean; seen: Array<{ pid: number; net: string | null }>; mine: string };
      expect(out.signalled, JSON.stringify(out)).toEqual([]);
      expect(out.environ).toEqual([]);
      expect(out.secretSeen).toBe(false);
      // Only its own processes, none of the host's or another sandbox's.
      expect(out.seen.length).toBeGreaterThan(0);
      expect(out.seen.every((p) => p.net === out.mine), JSON.stringify(out.seen)).toBe(true);
      expect(out.seen.some((p) => pids.includes(p.pid) && p.pid > 1)).toBe(false);
      // The victim is still there, untouched.
      expect(launcher.exitCode).toBeNull();
      expect((await s.t.db.sandbox.findUnique({ where: { id: box.id } }))?.removedAt).toBeNull();
    } finally {
      await endTask(s.t.db, s.admin, victim.taskId, "test ends the task");
      await new Promise((r) => (launcher.exitCode !== null ? r(null) : launcher.once("exit", r)));
    }
    // The command's own exit status is still what the launcher returns.
    const { taskId } = await s.newTask(DENY_ALL);
    const exit = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", "/bin/sh", "-c", "exit 7"], s.env());
    expect(exit.code, exit.stderr).toBe(7);
  }, 600_000);

  // Connections were counted against the task only from their first authenticated request: a
  // sandbox could hold any number that never got there (a request head or TLS handshake left
  // unfinished stays open for the head timeout), each a file descriptor of the worker.
  it.sequential("a sandbox holding connections it never finishes is capped at the task's connection limit from the accept; its neighbour is served and the hog is audited", async () => {
    await s.stopWorker();
    await s.startWorker({ BULKHEAD_TASK_MAX_CONNECTIONS: "6" });
    const hog = await s.newTask(PLAIN_READ);
    const neighbour = await s.newTask(PLAIN_READ);
    const hogLauncher = s.topo.spawnBulkhead(["sandbox", "run", "--task", hog.taskId, "--", "sleep", "120"], s.env());
    const neighbourLauncher = s.topo.spawnBulkhead(["sandbox", "run", "--task", neighbour.taskId, "--", "sleep", "120"], s.env());
    try {
      const hogBox = await s.liveSandbox(hog.taskId, hogLauncher);
      const neighbourBox = await s.liveSandbox(neighbour.taskId, neighbourLauncher);
      const inside = await s.topo.helper(hogBox.name);
      const stalled: net.Socket[] = [];
      for (let i = 0; i < 20; i++) {
        const socket = await inside.connect(PLAIN, 80);
        socket.on("error", () => undefined);
        // A request head that never ends: the worker waits for the rest until its head timeout (20 s).
        socket.write(`GET /stall-${i} HTTP/1.1\r\nHost: plain.example.test\r\n`);
        stalled.push(socket);
      }
      // Beyond the cap, closed at once; the first six wait for their heads.
      const open = await waitFor("the connections beyond the cap to be closed", async () => {
        const n = stalled.filter((c) => !c.destroyed && !c.readableEnded).length;
        return n <= 6 ? n : null;
      }, 10_000, 100).catch(() => stalled.filter((c) => !c.destroyed && !c.readableEnded).length);
      expect(open, "connections the hog still holds").toBeLessThanOrEqual(6);
      expect(open).toBeGreaterThan(0);
      // The neighbour is served meanwhile.
      const next = await s.topo.helper(neighbourBox.name);
      expect(await next.resolve(GATEWAY4, "plain.example.test")).toEqual([PLAIN]);
      const answer = await exchangeOn(await next.connect(PLAIN, 80), "GET /neighbour HTTP/1.1\r\nHost: plain.example.test\r\nConnection: close\r\n\r\n");
      expect(answer).toMatch(/^HTTP\/1\.1 200/);
      // The refusals are audited against the hog's task (a flood of them aggregated).
      await waitFor("the connection limit to be audited", async () => {
        const events = await s.t.db.auditEvent.findMany({ where: { taskId: hog.taskId, outcome: "deny" } });
        return events.some((e) => (e.data as { code?: string }).code === "sandbox_connection_limit");
      }, 20_000, 250);
      // What the hog closes, it may open again.
      for (const c of stalled) c.destroy();
      expect(await inside.resolve(GATEWAY4, "plain.example.test")).toEqual([PLAIN]);
      const again = await waitFor("the hog to be served again once it closed its connections", async () => {
        const out = await exchangeOn(await inside.connect(PLAIN, 80), "GET /again HTTP/1.1\r\nHost: plain.example.test\r\nConnection: close\r\n\r\n");
        return /^HTTP\/1\.1 200/.test(out) ? out : null;
      }, 10_000, 200);
      expect(again).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      for (const task of [hog, neighbour]) await endTask(s.t.db, s.admin, task.taskId, "test ends the task");
      for (const l of [hogLauncher, neighbourLauncher]) await new Promise((r) => (l.exitCode !== null ? r(null) : l.once("exit", r)));
    }
  }, 600_000);
});
