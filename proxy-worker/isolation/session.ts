/**
 * One sandboxed command from start to teardown: it runs inside the namespace, in a PID namespace
 * of its own, as an unprivileged user with no capabilities (setpriv: no ambient, inheritable or bounding-set capabilities, no new
 * privileges, so no CAP_NET_ADMIN or CAP_NET_RAW even through setuid files), with Bulkhead's CA in
 * the usual trust variables and no proxy variables. The sandbox is torn down (and the command
 * killed) when the command exits, when its task ends, expires or is revoked, when its agent is
 * suspended, when someone stops the sandbox, or when the launcher is told to stop.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import type { IsolationConfig } from "@/lib/config/isolation";
import type { Db } from "@/lib/db/client";
import type { Actor } from "@/lib/auth/actor";
import { formatBytes, inodesFor } from "@/lib/sandboxes/limits";
import { cgroupEvents, procsFiles } from "./cgroup";
import { teardownSandbox, type LaunchedSandbox } from "./launcher";
import { sandboxRunDir } from "./network";

const PROXY_VARIABLE = /_proxy$/i;
/** Where `ip netns` keeps the namespaces it names. */
const NETNS_DIR = "/run/netns";
const POLL_MS = 1000;

export function trustEnvironment(caFile: string): Record<string, string> {
  return { SSL_CERT_FILE: caFile, NODE_EXTRA_CA_CERTS: caFile, REQUESTS_CA_BUNDLE: caFile, CURL_CA_BUNDLE: caFile, GIT_SSL_CAINFO: caFile };
}

/**
 * The sandbox's HOME. All sandboxes run as the same user, so a shared home (or /tmp) would let
 * one plant dotfiles that another's tools obey (`.gitconfig`'s `core.fsmonitor`, `.npmrc`,
 * `.bashrc`...) and run its code there, as the other task. On the host this is an empty
 * directory owned by root; inside each sandbox a tmpfs of its own is mounted over it.
 */
export const sandboxHome = (netns: string) => path.join(sandboxRunDir(netns), "home");

/**
 * Every place outside its home where the sandbox user may write on a Debian host: the
 * world-writable directories (`find / -xdev -type d -perm -0002`, plus /dev/shm, a file system of
 * its own). Shared, they would let one sandbox leave another files, sockets, caches or lock files
 * to trust, or read what the other leaves there. Inside each sandbox an empty tmpfs of its own
 * (mode 1777 like the original, gone with the sandbox) is mounted over each one that exists.
 * /var/lock is a link to /run/lock.
 */
export const SANDBOX_SCRATCH = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"] as const;

/*
 * Run as root in the sandbox's own mount namespace, before the privileges are dropped: mounts the
 * private home ($5, owned by the sandbox user $1:$2, of tmpfs options $3), a private scratch of
 * tmpfs options $4 over each directory up to `--`, and terminals of its own, then runs what
 * follows. A mount that fails fails the start (mount's exit status). Every tmpfs has a size and
 * an inode count (limits.ts): without them each could grow to half the machine's memory, and an
 * agent writing to its home or /tmp took the RAM the proxy, the dashboard and the database need;
 * with them it gets ENOSPC. Terminals: /dev/ptmx is world-writable, and a terminal it opens in the
 * host's /dev/pts belongs to the sandbox user, so another sandbox could open it, read from it and
 * type into it; a devpts instance of the sandbox's own holds only its own (as in a container).
 */
const MOUNT_PRIVATE = [
  'mount -t tmpfs -o "mode=0700,uid=$1,gid=$2,nosuid,nodev,$3" bulkhead-home "$5" || exit',
  'scratch="$4"',
  "shift 5",
  'while [ "$1" != -- ]; do',
  '  if [ -d "$1" ]; then mount -t tmpfs -o "mode=1777,nosuid,nodev,$scratch" bulkhead-scratch "$1" || exit; fi',
  "  shift",
  "done",
  "shift",
  "mount -t devpts -o newinstance,ptmxmode=0666,mode=0600,nosuid,noexec bulkhead-pts /dev/pts || exit",
  "mount --bind /dev/pts/ptmx /dev/ptmx || exit",
  'exec "$@"',
].join("\n");

/*
 * Run as root, the sandbox's first process (PID 1 of its PID namespace), after its mounts and
 * just before the privileges are dropped: moves it into a user namespace of its own in which no
 * namespace can be created, then runs what follows (setpriv, then the command) there, as the
 * same process. Without it the sandbox user could create a user namespace (`unshare --user`,
 * `unshare -r`), hold every capability in it, and from there network, mount and other namespaces:
 * no way out of the sandbox, but the kernel attack surface most Linux privilege escalations start
 * from. `user.max_user_namespaces` (and the other `user.max_*_namespaces`) is a limit of each user
 * namespace, applied to whatever is created by the processes in it: 0 in the sandbox's own one,
 * written while still root there (CAP_SYS_RESOURCE in a namespace root owns), and the sandbox user,
 * without capabilities, can neither create one (ENOSPC) nor raise the limit; the other namespaces
 * need CAP_SYS_ADMIN in the user namespace, which it has in none. Nothing of the host changes.
 * How: a holder child creates the namespace (`unshare --user`); this shell, root in the parent
 * namespace, writes the identity map ("0 0 4294967295": every uid, gid and file owner looks as on
 * the host; setgroups stays allowed so that setpriv can clear the groups), keeps the namespace open
 * on fd 9, kills and reaps the holder (no process of the launcher is left for the command to
 * inherit), and enters the namespace itself (`nsenter --user`, which keeps the pid, so the command
 * is still PID 1, its parent-death signal and its cgroup). A host whose own limit is 0 already
 * refuses every user namespace (the sandbox user's too), and none can be made for the sandbox
 * there: the command runs as before. Any other failure fails the start (125), never runs the
 * command without it.
 */
export const CLOSE_USER_NAMESPACES = [
  'limits="$1"',
  "shift",
  'if [ "$(cat /proc/sys/user/max_user_namespaces)" = 0 ]; then exec "$@"; fi',
  "holder=",
  'fail() { echo "bulkhead: could not give the sandbox a user namespace of its own ($1)" >&2; [ -z "$holder" ] || kill -KILL "$holder" 2>/dev/null; exit 125; }',
  "unshare --user -- sleep 1000000 &",
  "holder=$!",
  'host=$(readlink /proc/self/ns/user) || fail "/proc/self/ns/user cannot be read"',
  "tries=0",
  'while [ "$(readlink "/proc/$holder/ns/user" 2>/dev/null)" = "$host" ]; do',
  '  tries=$((tries + 1)); [ "$tries" -le 1000 ] || fail "unshare --user did not create it within 10 s"',
  "  sleep 0.01",
  "done",
  'echo "0 0 4294967295" 2>/dev/null > "/proc/$holder/uid_map" || fail "unshare --user failed, or its uid_map could not be written"',
  'echo "0 0 4294967295" 2>/dev/null > "/proc/$holder/gid_map" || fail "its gid_map could not be written"',
  'exec 9< "/proc/$holder/ns/user"',
  // Braced with its own stderr: dash reports the holder's death ("Killed") on the command's stderr otherwise.
  '{ kill -KILL "$holder"; wait "$holder"; } 2>/dev/null',
  "holder=",
  'exec nsenter --user=/proc/self/fd/9 -- /bin/sh -c "$limits" sh "$@"',
].join("\n");

/*
 * Run as root in the sandbox's own user namespace (CLOSE_USER_NAMESPACES): closes the namespace's
 * fd, sets every `user.max_*_namespaces` of that namespace to 0 and runs what follows.
 */
export const ZERO_NAMESPACE_LIMITS = [
  "exec 9<&-",
  "for f in /proc/sys/user/max_*_namespaces; do",
  '  echo 0 2>/dev/null > "$f" || { echo "bulkhead: could not set $f to 0 in the sandbox\'s user namespace" >&2; exit 125; }',
  "done",
  'exec "$@"',
].join("\n");

/*
 * The first process of a sandbox, in the host's namespaces and still root: writes itself into
 * each of the sandbox's cgroup.procs files (up to `--`), then executes what follows. Everything
 * the sandbox runs descends from it, so nothing of the sandbox is ever outside its cgroup.
 */
const JOIN_CGROUP = [
  'while [ "$1" != -- ]; do',
  '  echo $$ > "$1" || { echo "bulkhead: could not put the sandbox in its cgroup ($1)" >&2; exit 125; }',
  "  shift",
  "done",
  "shift",
  'exec "$@"',
].join("\n");

/** tmpfs options for a size: `size=` and an inode count to match (limits.ts, inodesFor). */
export const tmpfsSize = (bytes: number) => `size=${Math.ceil(bytes / 1024)}k,nr_inodes=${inodesFor(bytes)}`;

/** What sandboxArgv needs to know about the sandbox. */
export type SandboxShape = Pick<LaunchedSandbox, "names" | "limits" | "cgroup">;

/**
 * The argument vector (for /bin/sh) that puts the sandbox's processes in its cgroup, enters the
 * sandbox and drops every privilege before `command`.
 * Every sandbox also gets its own PID namespace (with its own /proc): all sandboxes run as the
 * same user, and a process of one that could see another's would read its environment, signal
 * it, ptrace it or take its sockets (pidfd_getfd), and speak with that sandbox's identity.
 * `--kill-child`: when the launcher kills `unshare`, the command (the namespace's first process)
 * gets SIGKILL, and everything it started goes with it. The kernel clears that parent-death signal
 * when setpriv changes the user, so setpriv sets it again (`--pdeathsig KILL`); without it the
 * command outlived its launcher whenever its namespace was gone and could not be searched for it.
 * `--ipc`: System V shared memory, semaphores and message queues and POSIX message queues of its
 * own, for the same reason as the scratch directories.
 */
export function sandboxArgv(config: Pick<IsolationConfig, "uid" | "gid">, sandbox: SandboxShape, command: readonly string[]): string[] {
  const netns = sandbox.names.netns;
  return [
    "-c", JOIN_CGROUP, "sh", ...(sandbox.cgroup ? procsFiles(sandbox.cgroup) : []), "--",
    "ip", "netns", "exec", netns,
    "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--ipc", "--",
    // Still root, in the sandbox's own mount namespace: its home and scratch are tmpfs no other sandbox sees.
    "/bin/sh", "-c", MOUNT_PRIVATE, "sh", String(config.uid), String(config.gid), tmpfsSize(sandbox.limits.homeBytes), tmpfsSize(sandbox.limits.scratchBytes), sandboxHome(netns), ...SANDBOX_SCRATCH, "--",
    // Still root, PID 1 of its PID namespace: into a user namespace of its own where none can be created.
    "/bin/sh", "-c", CLOSE_USER_NAMESPACES, "sh", ZERO_NAMESPACE_LIMITS,
    "setpriv", `--reuid=${config.uid}`, `--regid=${config.gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--pdeathsig", "KILL", "--",
    ...command,
  ];
}

export interface SessionOptions {
  db: Db;
  databaseUrl: string;
  config: IsolationConfig;
  actor: Actor;
  sandbox: LaunchedSandbox;
  command: readonly string[];
  env: Record<string, string>;
  cwd?: string;
  /** `inherit` for `sandbox run`; `pipe` collects stdout (the self-test's probe). */
  stdio: "inherit" | "pipe";
  onStdout?: (chunk: Buffer) => void;
  /** Resolves to a reason when the caller wants the sandbox gone (signals). */
  stop?: Promise<string>;
  /**
   * Before the network goes: waits (bounded) until the worker has closed the sandbox's
   * connections itself, so that what the agent holds open sees the worker's close rather than a
   * vanished link.
   */
  drain?: () => Promise<void>;
}

export interface SessionResult {
  /** The command's exit status, or 128 + signal; 125 when the sandbox was torn down under it. */
  exitCode: number;
  reason: string;
}

export async function runSession(o: SessionOptions): Promise<SessionResult> {
  const env = Object.fromEntries(Object.entries(o.env).filter(([k]) => !PROXY_VARIABLE.test(k)));
  env.HOME ??= sandboxHome(o.sandbox.names.netns);
  Object.assign(env, trustEnvironment(o.sandbox.caFile));
  // A session of its own (setsid): the operator's terminal stays its standard input and output,
  // but is not its controlling terminal, so it cannot type into it (TIOCSTI: the operator's root
  // shell ran what a sandboxed command typed once the sandbox exited) or take its job control.
  // And tied to the launcher's life: `setpriv --pdeathsig KILL` makes the chain (sh, ip netns
  // exec, unshare: one process, each exec'ing the next) die with the launcher, and unshare's
  // --kill-child takes the command and its PID namespace with it. A launcher killed with SIGKILL
  // left the command running, with its network, as the task, until the next cleanup.
  const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", "/bin/sh", ...sandboxArgv(o.config, o.sandbox, o.command)], { stdio: ["inherit", o.stdio, "inherit"], env: env as NodeJS.ProcessEnv, cwd: o.cwd, detached: true });
  if (o.stdio === "pipe") child.stdout?.on("data", (c: Buffer) => o.onStdout?.(c));
  const exited = new Promise<SessionResult>((resolve) => {
    child.on("error", (error) => resolve({ exitCode: 127, reason: `the command could not start: ${error.message}` }));
    child.on("exit", (code, signal) => resolve({ exitCode: code ?? 128 + (signal ? 9 : 0), reason: `the command exited with ${code ?? signal}` }));
  });
  const ended = watchBinding(o.db, o.databaseUrl, o.sandbox);
  const outcome = await Promise.race([exited.then((r) => ({ kind: "exit" as const, ...r })), ended.promise.then((reason) => ({ kind: "ended" as const, reason })), (o.stop ?? new Promise<never>(() => undefined)).then((reason) => ({ kind: "ended" as const, reason }))]);
  ended.stop();
  // Kill first (teardown kills everything left in the namespace too), then remove the network.
  if (outcome.kind === "ended") {
    child.kill("SIGKILL");
    await o.drain?.().catch(() => undefined);
  }
  // What the kernel did to the sandbox at its limits, read before teardown removes the cgroup.
  const reason = `${outcome.reason}${limitsReached(o.sandbox)}`;
  await teardownSandbox(o.db, o.actor, o.sandbox, reason);
  if (outcome.kind === "exit") return { exitCode: outcome.exitCode, reason };
  return { exitCode: 125, reason };
}

/** "" or "; …" naming each limit the sandbox ran into (an OOM kill, forks refused at pids.max). */
export function limitsReached(sandbox: Pick<LaunchedSandbox, "limits" | "cgroup">): string {
  if (!sandbox.cgroup) return "";
  const { oomKills, pidsRefused } = cgroupEvents(sandbox.cgroup);
  const notes: string[] = [];
  if (oomKills > 0) notes.push(`the kernel killed ${oomKills} process(es) of the sandbox for going over its memory limit of ${formatBytes(sandbox.limits.memoryBytes ?? 0)} (out of memory in its cgroup)`);
  if (pidsRefused > 0) notes.push(`the sandbox reached its limit of ${sandbox.limits.pids ?? 0} processes (${pidsRefused} fork(s) refused)`);
  return notes.map((n) => `; ${n}`).join("");
}

/**
 * Why the sandbox is no longer there although its launcher did not remove it, or null: its
 * namespace or its folder (with the launcher file that marks it live) was removed by someone else
 * (`ip netns del`, a cleanup that took it for a leftover). Its command would otherwise run on
 * without a network until it exits of its own accord, and its launcher wait for it.
 */
function removedUnderIt(sandbox: LaunchedSandbox): string | null {
  if (!existsSync(path.join(NETNS_DIR, sandbox.names.netns))) return `the sandbox was removed under its launcher: its network namespace ${sandbox.names.netns} is gone`;
  if (!existsSync(path.join(sandbox.runDir, "launcher"))) return `the sandbox was removed under its launcher: its folder ${sandbox.runDir} is gone`;
  return null;
}

/** Resolves with a reason as soon as the sandbox's binding or task no longer allows it to live. */
function watchBinding(db: Db, databaseUrl: string, sandbox: LaunchedSandbox): { promise: Promise<string>; stop: () => void } {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let expiry: NodeJS.Timeout | null = null;
  const client = new pg.Client({ connectionString: databaseUrl });
  const promise = new Promise<string>((resolve) => {
    const check = async () => {
      if (stopped) return;
      const gone = removedUnderIt(sandbox);
      if (gone) return resolve(gone);
      const row = await db.sandbox
        .findUnique({ where: { id: sandbox.id }, select: { removedAt: true, removedReason: true, task: { select: { status: true, expiresAt: true, endedReason: true, agent: { select: { status: true } } } } } })
        .catch(() => undefined);
      if (row === undefined) return; // database away: keep running; the worker still enforces its snapshot
      if (!row) return resolve("the sandbox row is gone");
      if (row.removedAt) return resolve(`stopped: ${row.removedReason ?? "removed"}`);
      if (row.task.status !== "active") return resolve(`the task is ${row.task.status}${row.task.endedReason ? ` (${row.task.endedReason})` : ""}`);
      if (row.task.expiresAt.getTime() <= Date.now()) return resolve("the task expired");
      if (row.task.agent.status !== "active") return resolve("the agent is suspended");
    };
    client.on("notification", () => void check());
    client.on("error", () => undefined);
    void client.connect().then(() => client.query("LISTEN bulkhead_policy")).catch(() => undefined);
    timer = setInterval(() => void check(), POLL_MS);
    expiry = setTimeout(() => void check(), Math.min(2 ** 31 - 1, Math.max(0, sandbox.expiresAt.getTime() - Date.now()) + 10));
    void check();
  });
  return {
    promise,
    stop: () => {
      stopped = true;
      if (timer) clearInterval(timer);
      if (expiry) clearTimeout(expiry);
      void client.end().catch(() => undefined);
    },
  };
}
