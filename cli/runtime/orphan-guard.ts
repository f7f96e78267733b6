import { spawn } from "node:child_process";
import type { Socket } from "node:net";
import path from "node:path";
import { DATA_FOLDER_LOCK } from "./data-folder-lock";

/**
 * Stops the embedded PostgreSQL this process starts if the process dies without stopping it.
 *
 * A command ended by SIGINT, SIGTERM or SIGHUP stops its server itself (lib/process/ending-signals.ts),
 * but SIGKILL (a supervisor's last resort, the OOM killer) cannot be caught: the server ran on with
 * nobody to stop it, its folder's lock naming a dead process, and the next command took the leftover
 * for `bulkhead start`'s server and used it as one, so it ran until a `bulkhead start` found it.
 *
 * The guard is a small shell process (`/bin/sh`: no second Node.js start) in a process group of its
 * own, reading a pipe whose only writer is this process. The kernel closes the pipe however this
 * process ends, so the guard wakes up at once on SIGKILL too. Then, if the data folder's lock still
 * names this process (it was never released: an orderly end stops the server and releases the
 * lock first), it sends the postmaster SIGINT, PostgreSQL's fast shutdown (consistent, nothing
 * lost); it waits up to 30 s for `postmaster.pid` to appear, in case this process died while its
 * server was starting. A lock that names anyone else (a later command took it over) makes it do
 * nothing.
 */
export function stopServerIfThisProcessDies(dataDir: string): void {
  const script = [
    "cat > /dev/null",
    // The lock file is one line of JSON written by takeDataFolder: {"pid":123,...}.
    `owner=$(sed -n 's/^{"pid":\\([0-9]*\\),.*/\\1/p' "$1" 2>/dev/null)`,
    '[ "$owner" = "$3" ] || exit 0',
    "i=0",
    "while [ $i -lt 60 ]; do",
    '  pid=$(head -n 1 "$2" 2>/dev/null)',
    '  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null; exit 0; fi',
    "  sleep 0.5; i=$((i + 1))",
    "done",
  ].join("\n");
  const lock = path.join(dataDir, DATA_FOLDER_LOCK);
  const pidFile = path.join(dataDir, "postgres", "postmaster.pid");
  try {
    const guard = spawn("/bin/sh", ["-c", script, "bulkhead-database-guard", lock, pidFile, String(process.pid)], { stdio: ["pipe", "ignore", "ignore"], detached: true });
    guard.on("error", () => undefined);
    const pipe = guard.stdin as Socket;
    pipe.on("error", () => undefined);
    // Neither keeps this process alive: the pipe closes when it exits, which is the guard's signal.
    pipe.unref();
    guard.unref();
  } catch {
    // No shell to start: the server is still stopped by an orderly end or a signal that can be caught.
  }
}
