import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endTask } from "@/lib/tasks/tasks";
import { existsSync, readdirSync, rmSync } from "node:fs";
import type net from "node:net";
import path from "node:path";
import { CANARY4, CANARY6, exchangeOn, GATEWAY4, PLAIN, startStack, waitFor, type Stack } from "../../support/isolation/stack";
import { sh } from "../../support/isolation/topology";

/**
 * One sandbox against the others, from inside: every sandbox's command runs as the same user, so
 * a command that could see another sandbox's processes could read their environment, signal them,
 * ptrace them or take their sockets (pidfd_getfd) and speak with that sandbox's identity; what one
 * writes where that user may write (its home, /tmp and the other world-writable places, System V
 * IPC) another must not find; and one sandbox holding connections it never authenticates must not
 * starve the worker for the others.
 */
const DENY_ALL = "unlisted: deny\nrules: []\n";
const PLAIN_READ = "unlisted: deny\nrules:\n  - service: plainapi\n    effects: [read]\n";
const SECRET = "neighbour-secret-5d1e9a";
// A dotfile one sandbox plants in its home for the next one's tools (git obeys a planted
// `.gitconfig`'s core.fsmonitor, npm a `.npmrc`...): a unique name, removed afterwards.
const PLANTED = `.bulkhead-planted-${process.pid}`;

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
out.home = process.env.HOME;
try { fs.writeFileSync(require("node:path").join(process.env.HOME, ${JSON.stringify(PLANTED)}), "[core]\\n\\tfsmonitor = /tmp/evil\\n"); out.planted = true; } catch (e) { out.planted = String(e.code); }
console.log(JSON.stringify(out));
`;
// What a later sandbox finds in its own home.
const LOOKER = `
const fs = require("node:fs");
const home = process.env.HOME;
let writable = false;
try { fs.writeFileSync(home + "/.mine", "x"); writable = true; } catch {}
console.log(JSON.stringify({ home, writable, seen: fs.existsSync(home + "/" + ${JSON.stringify(PLANTED)}) }));
`;

// Every place outside its home where the sandbox user may write (the world-writable directories
// of a Debian host, and /var/lock, a link to /run/lock).
const SCRATCH = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock"];
// What each of two sandboxes running at once does there: leaves a file in each place, a socket in
// /tmp, a System V shared memory segment and a terminal, then for a while looks for anything it
// did not put there (the other's, or the host's), tries the other's socket and every terminal.
const SCRATCH_USER = `
const fs = require("node:fs");
const net = require("node:net");
const { execFileSync, spawn } = require("node:child_process");
const [me, other, ms] = [process.argv[1], process.argv[2], Number(process.argv[3])];
const places = ${JSON.stringify(SCRATCH)};
const out = { written: {}, foreign: {}, shmForeign: [], reachedOther: false, terminals: [] };
for (const dir of places) {
  try { fs.writeFileSync(dir + "/" + me + "-" + dir.replaceAll("/", "_"), me); out.written[dir] = true; } catch (e) { out.written[dir] = String(e.code); }
}
const server = net.createServer((c) => c.end(me)).listen("/tmp/" + me + ".sock");
const shmid = execFileSync("ipcmk", ["-M", "4096", "-p", "0666"], { encoding: "utf8" }).match(/[0-9]+/)[0];
// A terminal of its own (as an agent that drives a shell through one has).
const terminal = spawn("script", ["-qc", "sleep " + Math.ceil(ms / 1000), "/dev/null"], { stdio: ["pipe", "ignore", "ignore"] });
const look = () => {
  for (const dir of places) {
    let names = [];
    try { names = fs.readdirSync(dir); } catch (e) { names = ["(unreadable: " + e.code + ")"]; }
    const theirs = names.filter((n) => !n.startsWith(me));
    if (theirs.length) out.foreign[dir] = [...new Set([...(out.foreign[dir] ?? []), ...theirs.slice(0, 10)])];
  }
  const ids = fs.readFileSync("/proc/sysvipc/shm", "utf8").trim().split("\\n").slice(1).map((l) => l.trim().split(/\\s+/)[1]);
  out.shmForeign = [...new Set([...out.shmForeign, ...ids.filter((id) => id !== shmid)])];
  // Every terminal it can open to type into: its own, and any other's it can reach.
  for (const n of fs.readdirSync("/dev/pts").filter((n) => /^[0-9]+$/.test(n))) {
    try { fs.closeSync(fs.openSync("/dev/pts/" + n, fs.constants.O_WRONLY | fs.constants.O_NOCTTY)); if (!out.terminals.includes(n)) out.terminals.push(n); } catch {}
  }
  const c = net.connect("/tmp/" + other + ".sock");
  c.on("data", () => { out.reachedOther = true; c.destroy(); });
  c.on("error", () => undefined);
};
const timer = setInterval(look, 200);
look();
setTimeout(() => {
  clearInterval(timer);
  server.close();
  terminal.kill();
  execFileSync("ipcrm", ["-m", shmid]);
  console.log(JSON.stringify(out));
  process.exit(0);
}, ms);
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

  it.sequential("a sandbox cannot see, signal or read another sandbox's processes nor plant files in another's home (no way to take its identity), and the command's exit status still comes back", async () => {
    const victim = await s.newTask(DENY_ALL);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", victim.taskId, "--env", `AGENT_SECRET=${SECRET}`, "--", "sleep", "120"], s.env());
    try {
      const box = await s.liveSandbox(victim.taskId, launcher);
      // "ready" is printed as the command is started: its process may join the namespace a moment later.
      const pids = await waitFor(`the victim's processes in ${box.name}`, async () => {
        const found = (await sh("ip", ["netns", "pids", box.name])).stdout.split(/\s+/).filter((p) => /^[0-9]+$/.test(p)).map(Number);
        return found.length > 0 ? found : null;
      });
      expect(pids.length).toBeGreaterThan(0);
      const attacker = await s.newTask(DENY_ALL);
      const run = await s.topo.bulkhead(["sandbox", "run", "--task", attacker.taskId, "--", process.execPath, "-e", ATTACKER, JSON.stringify(pids)], s.env());
      expect(run.code, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as { signalled: number[]; environ: string[]; secretSeen: boolean; seen: Array<{ pid: number; net: string | null }>; mine: string; planted: boolean | string };
      expect(out.signalled, JSON.stringify(out)).toEqual([]);
      expect(out.environ).toEqual([]);
      expect(out.secretSeen).toBe(false);
      // Only its own processes, none of the host's or another sandbox's.
      expect(out.seen.length).toBeGreaterThan(0);
      expect(out.seen.every((p) => p.net === out.mine), JSON.stringify(out.seen)).toBe(true);
      expect(out.seen.some((p) => pids.includes(p.pid) && p.pid > 1)).toBe(false);
      // Its home is its own: what it planted there, no other sandbox finds in its home.
      expect(out.planted).toBe(true);
      const look = await s.topo.bulkhead(["sandbox", "run", "--task", (await s.newTask(DENY_ALL)).taskId, "--", process.execPath, "-e", LOOKER], s.env());
      expect(look.code, look.stderr).toBe(0);
      const seen = JSON.parse(look.stdout.trim().split("\n").pop() ?? "{}") as { home: string; writable: boolean; seen: boolean };
      expect(seen.writable).toBe(true);
      expect(seen.seen, JSON.stringify(seen)).toBe(false);
      // The victim is still there, untouched.
      expect(launcher.exitCode).toBeNull();
      expect((await s.t.db.sandbox.findUnique({ where: { id: box.id } }))?.removedAt).toBeNull();
    } finally {
      rmSync(path.join("/tmp", PLANTED), { force: true });
      await endTask(s.t.db, s.admin, victim.taskId, "test ends the task");
      await new Promise((r) => (launcher.exitCode !== null ? r(null) : launcher.once("exit", r)));
    }
    // The command's own exit status is still what the launcher returns.
    const { taskId } = await s.newTask(DENY_ALL);
    const exit = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", "/bin/sh", "-c", "exit 7"], s.env());
    expect(exit.code, exit.stderr).toBe(7);
  }, 600_000);

  it.sequential("two sandboxes at once each write to /tmp, /var/tmp, /dev/shm and /run/lock (and System V shared memory, terminals) of their own: neither finds the other's files, sockets, segments or terminals, nor the host's, and nothing lands on the host", async () => {
    const names = [`bulkhead-a-${process.pid}`, `bulkhead-b-${process.pid}`];
    const tasks = await Promise.all(names.map(() => s.newTask(DENY_ALL)));
    const hostCopies = () => SCRATCH.flatMap((dir) => (existsSync(dir) ? readdirSync(dir).filter((n) => names.some((name) => n.startsWith(name))).map((n) => path.join(dir, n)) : []));
    try {
      const runs = await Promise.all(
        tasks.map((task, i) => s.topo.bulkhead(["sandbox", "run", "--task", task.taskId, "--", process.execPath, "-e", SCRATCH_USER, names[i]!, names[1 - i]!, "8000"], s.env())),
      );
      for (const [i, run] of runs.entries()) {
        expect(run.code, run.stderr).toBe(0);
        const out = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as { written: Record<string, boolean | string>; foreign: Record<string, string[]>; shmForeign: string[]; reachedOther: boolean; terminals: string[] };
        expect(out.written, `sandbox ${names[i]}`).toEqual(Object.fromEntries(SCRATCH.map((d) => [d, true])));
        expect(out.foreign, `what sandbox ${names[i]} found that it did not write`).toEqual({});
        expect(out.shmForeign, `shared memory segments sandbox ${names[i]} saw besides its own`).toEqual([]);
        expect(out.reachedOther, `sandbox ${names[i]} reached the other's socket`).toBe(false);
        expect(out.terminals, `terminals sandbox ${names[i]} could type into (its own is one)`).toHaveLength(1);
      }
      // What they wrote went with their sandboxes; none of it was ever the host's.
      expect(hostCopies()).toEqual([]);
    } finally {
      for (const file of hostCopies()) rmSync(file, { force: true });
    }
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

  // The agent as root in its own network namespace (the helper runs there without setpriv): it
  // puts a neighbour's addresses on its own interface and speaks from them. The fence's guard
  // must drop that before anything can take it for the neighbour's task.
  it.sequential("a sandbox that takes a neighbour's addresses (as root in its namespace) is not taken for the neighbour: nothing gets through from them, and nothing is blamed on the neighbour", async () => {
    const thief = await s.newTask(DENY_ALL);
    const victim = await s.newTask(PLAIN_READ);
    const thiefLauncher = s.topo.spawnBulkhead(["sandbox", "run", "--task", thief.taskId, "--", "sleep", "120"], s.env());
    const victimLauncher = s.topo.spawnBulkhead(["sandbox", "run", "--task", victim.taskId, "--", "sleep", "120"], s.env());
    try {
      const live = (taskId: string, launcher: typeof thiefLauncher) => s.liveSandbox(taskId, launcher).catch((error: unknown) => {
        throw new Error(`${String(error)}\nlauncher: ${launcher.output.stderr.slice(-2000)}\nworker: ${s.workerLog().slice(-3000)}`);
      });
      const thiefBox = await live(thief.taskId, thiefLauncher);
      const victimBox = await live(victim.taskId, victimLauncher);
      const links = JSON.parse((await sh("ip", ["-n", thiefBox.name, "-j", "link", "show"])).stdout) as Array<{ ifname: string }>;
      const ifname = links.map((l) => l.ifname).find((n) => n !== "lo")!;
      for (const address of [`${victimBox.sourceAddress}/32`, `${victimBox.sourceAddressV6}/128`]) {
        const added = await sh("ip", ["-n", thiefBox.name, ...(address.includes(":") ? ["-6"] : []), "addr", "add", address, "dev", ifname, ...(address.includes(":") ? ["nodad"] : [])]);
        expect(added.code, added.stderr).toBe(0);
      }
      const inside = await s.topo.helper(thiefBox.name);
      // The victim may read plain.example.test; the thief may not (control: refused as itself).
      const own = await exchangeOn(await inside.connect(PLAIN, 80), "GET /own HTTP/1.1\r\nHost: plain.example.test\r\nConnection: close\r\n\r\n");
      expect(own).toMatch(/^HTTP\/1\.1 403/);
      const hitsBefore = s.plain.hits.length;
      const GET = "GET /stolen HTTP/1.1\r\nHost: plain.example.test\r\nConnection: close\r\n\r\n";
      for (const [target, from] of [[PLAIN, victimBox.sourceAddress!], ["fd42:b17e:ad00::1", victimBox.sourceAddressV6!], [GATEWAY4, victimBox.sourceAddress!]] as const) {
        const attempt = inside.connect(target, 80, from).then(
          (socket) => exchangeOn(socket, GET),
          () => "refused",
        );
        const got = await Promise.race([attempt, new Promise<string>((r) => setTimeout(() => r("no answer"), 4000))]);
        expect(got, `from ${from} to ${target}`).not.toMatch(/^HTTP\/1\.1 200/);
      }
      expect(s.plain.hits.length).toBe(hitsBefore);
      // Datagrams from the neighbour's addresses go nowhere and are not blamed on the neighbour
      // (the fence's drop counters are keyed by source address): a sandbox cannot frame another
      // with escape attempts. Then one from its own address, which is counted against itself.
      expect(await inside.udpExchange(CANARY4, 9997, "framed", 300, victimBox.sourceAddress!)).toBeNull();
      expect(await inside.udpExchange(CANARY6, 9997, "framed", 300, victimBox.sourceAddressV6!)).toBeNull();
      expect(await inside.udpExchange(CANARY4, 9996, "own", 300)).toBeNull();
      const flowsOf = async (taskId: string) =>
        (await s.t.db.auditEvent.findMany({ where: { taskId, type: "sandbox.escape_blocked" } })).flatMap((e) => (e.data as { flows: Array<{ destination: string; port: number }> }).flows);
      await waitFor("the thief's own drop to be audited against it", async () => (await flowsOf(thief.taskId)).some((f) => f.port === 9996), 20_000, 250);
      // Each sandbox's drops are their own event: give the read that saw the thief's time to
      // write every other sandbox's too, and another read on top.
      await new Promise((r) => setTimeout(r, 5000));
      expect(await flowsOf(victim.taskId)).toEqual([]);
      expect(s.canary.udpHits + s.canary6.udpHits).toBe(0);
      // Nothing at all was judged as the victim's task.
      const asVictim = await s.t.db.auditEvent.findMany({ where: { taskId: victim.taskId, type: { in: ["proxy.decision", "sandbox.escape_blocked"] } } });
      expect(asVictim).toEqual([]);
      inside.close();
    } finally {
      for (const task of [thief, victim]) await endTask(s.t.db, s.admin, task.taskId, "test ends the task");
      for (const l of [thiefLauncher, victimLauncher]) await new Promise((r) => (l.exitCode !== null ? r(null) : l.once("exit", r)));
    }
  }, 600_000);
});
