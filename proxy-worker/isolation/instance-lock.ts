/**
 * One lock per Bulkhead instance on this machine, taken by everything that changes what its
 * sandboxes are made of: building a sandbox (from reserving its row to writing its launcher file),
 * tearing one down, removing leftovers and removing the unused fence. Without it the cleanup of a
 * launcher starting at the same moment as another took the other's half-built sandbox (a row, a
 * namespace, interfaces, a folder, but no launcher file yet) for a crash's leftovers and destroyed
 * it under it; and a fence found unused could be removed between another launcher installing it
 * and creating its namespace, leaving that sandbox without one.
 *
 * The lock is flock(2) on `/run/bulkhead-sandbox/bh-<instance>-lock`. The kernel ties it to the
 * open file, so it goes when the holder exits however it exits (SIGKILL, a crash): nothing stale
 * to judge, unlike a pid file. Node opens files close-on-exec, so no tool or sandboxed command a
 * holder starts inherits it. flock is called through koffi (as getsockopt is,
 * original-destination.ts) without blocking: a blocking call would stop the event loop, or tie a
 * thread to a wait that cannot be given up.
 */
import { createRequire } from "node:module";
import { mkdir, open, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { IsolationError } from "./exec";
import { RUN_DIR } from "./network";
import { netnsPrefix } from "./names";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

const EINTR = 4;
const EWOULDBLOCK = 11;

type Flock = (fd: number, operation: number) => number;
let libc: { flock: Flock; errno: () => number } | null = null;

function load(): { flock: Flock; errno: () => number } {
  if (libc) return libc;
  const koffi = createRequire(import.meta.url)("koffi") as { load(path: string): { func(signature: string): Flock }; errno(): number };
  libc = { flock: koffi.load("libc.so.6").func("int flock(int, int)"), errno: () => koffi.errno() };
  return libc;
}

/** The lock file of an instance (kept: removing a lock file others may have open would split the lock). */
export const instanceLockFile = (instanceId: string) => path.join(RUN_DIR, `${netnsPrefix(instanceId)}lock`);

/**
 * Instances whose lock this process holds (taking it again here would wait for itself), with the
 * open lock file. The map is what keeps that file reachable while `fn` runs: a FileHandle nothing
 * references is closed when it is garbage-collected, and closing it releases the flock, so a
 * holder waiting on a promise only its own closure references lost its lock at the next
 * collection.
 */
const heldHere = new Map<string, FileHandle | null>();

/**
 * Runs `fn` holding the instance's lock; waits for it at most `timeoutMs` (a holder builds or
 * removes one sandbox, seconds at most), then fails naming what waited.
 */
export async function withInstanceLock<T>(instanceId: string, what: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  if (heldHere.has(instanceId)) throw new Error(`${what}: the sandbox lock of instance ${instanceId} is already held by this process`);
  heldHere.set(instanceId, null);
  let file: FileHandle | null = null;
  try {
    await mkdir(RUN_DIR, { recursive: true, mode: 0o755 });
    file = await open(instanceLockFile(instanceId), "a", 0o600);
    heldHere.set(instanceId, file);
    const deadline = Date.now() + timeoutMs;
    while (load().flock(file.fd, LOCK_EX | LOCK_NB) !== 0) {
      const errno = load().errno();
      if (errno !== EWOULDBLOCK && errno !== EINTR) throw new IsolationError(`${what}: could not lock ${instanceLockFile(instanceId)} (errno ${errno})`, "command_failed");
      if (Date.now() > deadline) {
        throw new IsolationError(`${what}: another Bulkhead process of instance ${instanceId} has held its sandbox lock (${instanceLockFile(instanceId)}) for ${Math.round(timeoutMs / 1000)} s; try again`, "lock_timeout");
      }
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
    }
    return await fn();
  } finally {
    // Closing the file releases the lock; the explicit unlock only says so first.
    if (file) {
      load().flock(file.fd, LOCK_UN);
      await file.close().catch(() => undefined);
    }
    heldHere.delete(instanceId);
  }
}
