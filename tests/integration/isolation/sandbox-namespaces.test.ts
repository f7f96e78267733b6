import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLOSE_USER_NAMESPACES, ZERO_NAMESPACE_LIMITS } from "@/proxy-worker/isolation/session";
import { PLAIN_SECRET, startStack, type Stack } from "../../support/isolation/stack";
import { sh } from "../../support/isolation/topology";

/**
 * A sandboxed command creating namespaces of its own. The sandbox user could create a user
 * namespace (`unshare --user`, `unshare -r`), hold every capability there, and from it network,
 * mount and other namespaces: the kernel attack surface most Linux privilege escalations start
 * from. Every way in is tried from inside a real sandbox, through util-linux's unshare(1) and the
 * raw unshare(2) and clone(2) system calls (python3's ctypes: Node has threads, and the kernel
 * refuses unshare(CLONE_NEWUSER) to a threaded process whatever the sandbox allows), and the
 * sandbox is still what it was: its user and groups, its home, its scratch, no capabilities, its
 * own processes only, and its network through Bulkhead.
 */
const PLAIN_READ = "unlisted: deny\nrules:\n  - service: plainapi\n    effects: [read]\n";
// Not 65534: the kernel shows an unmapped uid as 65534, so a sandbox whose ids were not mapped
// one to one would look right as `nobody`.
const UID = 64123;
const GID = 64124;
const PYTHON = "/usr/bin/python3";

// The raw system calls, one attempt per process (a namespace created by one would change the next).
const RAW = `
import ctypes, json, os, platform, sys
libc = ctypes.CDLL(None, use_errno=True)
call, flags = sys.argv[1], int(sys.argv[2])
if call == "unshare":
    result = "created" if libc.unshare(flags) == 0 else os.strerror(ctypes.get_errno())
else:
    number = {"x86_64": 56, "aarch64": 220}[platform.machine()]
    pid = libc.syscall(number, flags | 17, 0, 0, 0, 0)  # SIGCHLD; no stack: like fork
    if pid == 0:
        os._exit(0)
    result = os.strerror(ctypes.get_errno()) if pid < 0 else "created"
    if pid > 0:
        os.waitpid(pid, 0)
print(result)
`;

const INSIDE = `
const fs = require("node:fs");
const { spawnSync } = require("node:child_process");
const attempt = (file, args) => {
  const r = spawnSync(file, args, { encoding: "utf8" });
  return r.error ? "could not run: " + r.error.code : r.status === 0 ? "created" : (r.stderr.trim().split("\\n").pop() || "exit " + r.status);
};
const out = { tools: {}, raw: {} };
for (const args of [["--user"], ["-r", "--net"], ["--user", "--map-root-user", "--mount"], ["--user", "--map-root-user", "--pid", "--fork"], ["-r", "--ipc", "--uts", "--cgroup"], ["--net"], ["--mount"], ["--uts"]]) {
  out.tools["unshare " + args.join(" ")] = attempt("unshare", [...args, "--", "true"]);
}
const python = ${JSON.stringify(PYTHON)};
if (fs.existsSync(python)) {
  const CLONE_NEWUSER = 0x10000000, CLONE_NEWNET = 0x40000000, CLONE_NEWNS = 0x20000;
  for (const [name, call, flags] of [["unshare(CLONE_NEWUSER)", "unshare", CLONE_NEWUSER], ["unshare(CLONE_NEWUSER|CLONE_NEWNET)", "unshare", CLONE_NEWUSER | CLONE_NEWNET], ["clone(CLONE_NEWUSER)", "clone", CLONE_NEWUSER], ["clone(CLONE_NEWUSER|CLONE_NEWNET|CLONE_NEWNS)", "clone", CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS]]) {
    const r = spawnSync(python, ["-c", process.argv[1], call, String(flags)], { encoding: "utf8" });
    out.raw[name] = r.status === 0 ? r.stdout.trim() : "python failed: " + r.stderr.trim().split("\\n").pop();
  }
}
const limit = "/proc/sys/user/max_user_namespaces";
try { fs.writeFileSync(limit, "1000\\n"); out.raised = true; } catch (e) { out.raised = e.code; }
out.limit = fs.readFileSync(limit, "utf8").trim();
out.uid = process.getuid(); out.gid = process.getgid(); out.groups = process.getgroups();
out.euid = process.geteuid();
const status = fs.readFileSync("/proc/self/status", "utf8");
out.status = Object.fromEntries(status.split("\\n").filter((l) => /^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):/.test(l)).map((l) => l.split(/:\\s+/)));
const passwd = fs.statSync("/etc/passwd");
out.passwdOwner = passwd.uid + ":" + passwd.gid;
const home = fs.statSync(process.env.HOME);
out.home = { owner: home.uid + ":" + home.gid, mode: (home.mode & 0o777).toString(8), tmpfs: fs.statfsSync(process.env.HOME).type === 0x01021994 };
fs.writeFileSync(process.env.HOME + "/note", "x");
out.homeFile = fs.statSync(process.env.HOME + "/note").uid;
fs.writeFileSync("/tmp/note", "x");
out.scratch = { tmpfs: fs.statfsSync("/tmp").type === 0x01021994, file: fs.statSync("/tmp/note").uid };
out.pid = process.pid;
out.seen = fs.readdirSync("/proc").filter((e) => /^[0-9]+$/.test(e)).map(Number);
out.mine = fs.readlinkSync("/proc/self/ns/net");
out.others = out.seen.filter((p) => { try { return fs.readlinkSync("/proc/" + p + "/ns/net") !== out.mine; } catch { return false; } });
(async () => {
  try { const r = await fetch("http://plain.example.test/items"); out.plain = r.status; } catch (e) { out.plain = String(e.cause?.code ?? e.message); }
  console.log(JSON.stringify(out));
})();
`;

interface Inside {
  tools: Record<string, string>;
  raw: Record<string, string>;
  raised: true | string;
  limit: string;
  uid: number;
  gid: number;
  euid: number;
  groups: number[];
  status: Record<string, string>;
  passwdOwner: string;
  home: { owner: string; mode: string; tmpfs: boolean };
  homeFile: number;
  scratch: { tmpfs: boolean; file: number };
  pid: number;
  seen: number[];
  others: number[];
  plain: number | string;
}

describe("sandboxes: no namespaces of their own", () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
    await s.startWorker();
  }, 600_000);
  afterAll(async () => {
    await s?.close();
  });

  it.sequential("a sandboxed command can create no user namespace (nor, through one, a network, mount or PID namespace) and cannot raise the limit; it keeps its uid and gid, home, scratch, own processes and network through Bulkhead", async () => {
    const { taskId } = await s.newTask(PLAIN_READ);
    const run = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", process.execPath, "-e", INSIDE, RAW], s.env({ BULKHEAD_SANDBOX_USER: `${UID}:${GID}` }));
    expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
    // The launcher's own steps write nothing the command did not write (dash reported the user
    // namespace holder it kills as "Killed").
    expect(run.stderr).not.toMatch(/^Killed$/m);
    const out = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as Inside;
    const all = JSON.stringify(out, null, 1);
    // Nothing created: a user namespace is over the limit of the sandbox's own (ENOSPC), the
    // others need CAP_SYS_ADMIN, which it has nowhere.
    for (const [attempt, result] of Object.entries(out.tools)) expect(result, `${attempt}\n${all}`).toMatch(/No space left on device|Operation not permitted/);
    expect(Object.keys(out.tools)).toHaveLength(8);
    if (existsSync(PYTHON)) {
      expect(Object.keys(out.raw)).toHaveLength(4);
      for (const [call, result] of Object.entries(out.raw)) expect(result, `${call}\n${all}`).toMatch(/No space left on device|Operation not permitted/);
    }
    expect(out.raised, all).toBe("EACCES");
    expect(out.limit).toBe("0");
    // Still the sandbox it was: its ids (mapped one to one: root's files are root's), no
    // capabilities and no new privileges, a home and a /tmp of its own, its own processes only.
    expect([out.uid, out.euid, out.gid, out.groups], all).toEqual([UID, UID, GID, [GID]]);
    expect(out.status).toEqual({ CapInh: "0000000000000000", CapPrm: "0000000000000000", CapEff: "0000000000000000", CapBnd: "0000000000000000", CapAmb: "0000000000000000", NoNewPrivs: "1" });
    expect(out.passwdOwner).toBe("0:0");
    expect(out.home).toEqual({ owner: `${UID}:${GID}`, mode: "700", tmpfs: true });
    expect(out.homeFile).toBe(UID);
    expect(out.scratch).toEqual({ tmpfs: true, file: UID });
    expect(out.pid).toBe(1);
    expect(out.others, all).toEqual([]);
    expect(out.seen.length, all).toBeLessThan(10);
    // Its network is still Bulkhead's, credential injected.
    expect(out.plain, all).toBe(200);
    expect(s.plain.hits.at(-1)?.headers["x-api-key"]).toBe(PLAIN_SECRET);
  }, 600_000);

  // The operator's terminal is the command's standard input (an agent may read it), but must not
  // be its controlling terminal: with one, a command as any user may type into it (TIOCSTI), and
  // the operator's root shell ran what it typed once the sandbox exited.
  it.sequential("a sandboxed command started from a terminal has no controlling terminal and cannot type into it", async () => {
    const { taskId } = await s.newTask(PLAIN_READ);
    const inside = 'set -- $(cat /proc/self/stat); echo "tty=$7"; exec perl -e \'my $c = "x"; if (ioctl(STDIN, 0x5412, $c)) { print "typed", chr(10) } else { print "refused: $!", chr(10) }\'';
    const cli = ["nsenter", `--net=/run/netns/${s.topo.host}`, "--", process.execPath, "bin/bulkhead.mjs", "sandbox", "run", "--task", taskId, "--", "/bin/sh", "-c", inside];
    // script(1) gives the launcher a terminal of its own, as an operator's shell has.
    const quoted = cli.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
    const run = await sh("script", ["-qec", quoted, "/dev/null"], { env: s.env({}), timeoutMs: 240_000 });
    const out = run.stdout.replace(/\r/g, "");
    expect(out, `${out}\n${run.stderr}`).toMatch(/^tty=0$/m);
    expect(out, `${out}\n${run.stderr}`).toMatch(/^refused: /m);
    expect(out).not.toMatch(/typed/);
  }, 600_000);

  // The launcher's step on its own, as root in a user namespace the test makes (nothing of the host changes).
  const step = (limit: string, script: string) =>
    sh("unshare", ["--user", "--map-root-user", "--", "/bin/sh", "-c", `echo ${limit} > /proc/sys/user/max_user_namespaces && exec /bin/sh -c "$0" sh "$1" /bin/sh -c "$2"`, CLOSE_USER_NAMESPACES, ZERO_NAMESPACE_LIMITS, script]);

  it("on a host that allows no user namespace at all the command runs as before (none can be made for it, and it can make none)", async () => {
    const r = await step("0", 'echo ran; unshare --user true || echo "refused $?"');
    expect(r.stdout, r.stderr).toBe("ran\nrefused 1\n");
    expect(r.stderr).toMatch(/No space left on device/);
    expect(r.code).toBe(0);
  });

  it("when the sandbox's user namespace cannot be made (here: its ids cannot be mapped) the command never runs", async () => {
    const r = await step("10", "echo ran");
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/bulkhead: could not give the sandbox a user namespace of its own/);
    expect(r.code).toBe(125);
  });
});
