import { existsSync, readFileSync, realpathSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { makeFoldersSync } from "@/lib/files/make-folders";
import { lockOwnerAlive, processStartTime } from "@/lib/files/process-alive";

export { processStartTime };

/**
 * One Bulkhead per data folder. The folder holds the embedded PostgreSQL, the audit log, the
 * keys and the checkpoint signer's state; two launchers on it would fight over all of them, and
 * the second would take the first one's running PostgreSQL for a leftover of a killed run and
 * stop it. `bulkhead start` holds this lock for its whole life; a CLI command holds it while it
 * runs an embedded PostgreSQL of its own (next to a running Bulkhead it reuses that one's and
 * takes nothing).
 *
 * The lock is a file created exclusively (`wx`) holding the owner's pid, the kernel's start time
 * of that process (so that a pid reused after a reboot or a crash is not taken for the owner) and
 * what it runs. A lock whose owner is gone (SIGKILL, power loss) is stale and taken over. So is
 * one that names another folder that still exists (`folder`, the real path it was taken on): this
 * folder is a copy made while that one was held, and the copy's commands were refused as if
 * Bulkhead ran on it ("already running on the data folder <copy> (pid …)", the pid of the
 * original's launcher).
 */
export const DATA_FOLDER_LOCK = "bulkhead.lock";

export interface DataFolderOwner {
  pid: number;
  /** Start time of the process in clock ticks since boot (`/proc/<pid>/stat`), where known. */
  startedAt: string | null;
  /** What holds it: `start`, or the CLI command that started its own database. */
  command: string;
  /** The real path of the folder it was taken on (absent in locks written before it was recorded). */
  folder?: string;
}

export class DataFolderBusyError extends Error {
  constructor(
    message: string,
    readonly owner: DataFolderOwner,
  ) {
    super(message);
    this.name = "DataFolderBusyError";
  }
}

/** This process's command as people typed it, for naming it to others: `bulkhead audit export`. */
export function commandLine(argv: readonly string[] = process.argv.slice(2)): string {
  const words: string[] = [];
  for (const a of argv) {
    if (a === "--" || words.length === 2) break;
    if (!a.startsWith("-")) words.push(a);
  }
  return ["bulkhead", ...words].join(" ").slice(0, 100);
}

const FOLDER_PROBLEMS: Record<string, string> = {
  EEXIST: "it is a file, not a folder",
  ENOTDIR: "part of its path is a file, not a folder",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "it is on a read-only file system",
  ENOSPC: "the disk is full",
  ENOENT: "no folder can be created there",
};

/** Creates the data folder (owner-only) or finds it; a clear sentence when it cannot be used. */
function ensureFolder(dataDir: string): void {
  let problem: string | null = null;
  try {
    makeFoldersSync(dataDir);
    if (!statSync(dataDir).isDirectory()) problem = FOLDER_PROBLEMS.EEXIST!;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    problem = FOLDER_PROBLEMS[e.code ?? ""] ?? e.message;
  }
  if (problem) throw new Error(`The data folder ${dataDir} (BULKHEAD_DATA_DIR) cannot be used: ${problem}.`);
}

function realOrSame(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** Alive, and holding this folder (not the original of a copy: its folder is elsewhere and still there). */
function holds(owner: DataFolderOwner, dataDir: string): boolean {
  if (owner.folder !== undefined && owner.folder !== realOrSame(dataDir) && existsSync(owner.folder)) return false;
  return lockOwnerAlive(owner.pid, owner.startedAt);
}

function readOwner(file: string): DataFolderOwner | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text) as Partial<DataFolderOwner>;
    if (typeof v.pid === "number") {
      return { pid: v.pid, startedAt: typeof v.startedAt === "string" ? v.startedAt : null, command: typeof v.command === "string" ? v.command : "bulkhead", ...(typeof v.folder === "string" ? { folder: v.folder } : {}) };
    }
  } catch {
    // a torn or foreign file: no owner can be named, so it is stale
  }
  return null;
}

function describe(owner: DataFolderOwner, dataDir: string, taker: string): string {
  if (owner.command !== "start") {
    return `A bulkhead command (${owner.command}, pid ${owner.pid}) is using the embedded database in ${dataDir}. Wait for it to finish, then try again.`;
  }
  return taker === "start"
    ? `Bulkhead is already running on the data folder ${dataDir} (bulkhead start, pid ${owner.pid}). Stop it first (Ctrl-C where it runs), or give this one its own BULKHEAD_DATA_DIR.`
    : `Bulkhead (bulkhead start, pid ${owner.pid}) is starting on the data folder ${dataDir} and its database is not up yet. Try again in a moment.`;
}

/** The live process that holds the data folder, or null when nobody does (or its owner is gone). */
export function dataFolderOwner(dataDir: string): DataFolderOwner | null {
  const owner = readOwner(path.join(dataDir, DATA_FOLDER_LOCK));
  return owner && holds(owner, dataDir) ? owner : null;
}

/**
 * Takes the data folder for `command`; returns the release (idempotent; also run when the process
 * exits). Throws DataFolderBusyError, naming the owner, while another live process holds it.
 */
export function takeDataFolder(dataDir: string, command: string): () => void {
  ensureFolder(dataDir);
  const file = path.join(dataDir, DATA_FOLDER_LOCK);
  const me: DataFolderOwner = { pid: process.pid, startedAt: processStartTime(process.pid), command, folder: realOrSame(dataDir) };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: "wx", mode: 0o600 });
      break;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "";
      if (code !== "EEXIST") throw new Error(`The data folder ${dataDir} (BULKHEAD_DATA_DIR) cannot be used: ${FOLDER_PROBLEMS[code] ?? (error as Error).message} (writing ${DATA_FOLDER_LOCK}).`);
    }
    const owner = readOwner(file);
    if (owner && owner.pid !== process.pid && holds(owner, dataDir)) throw new DataFolderBusyError(describe(owner, dataDir, command), owner);
    // Stale (its owner is gone) or unreadable: removed and taken. The file is created
    // exclusively, so of two takers the later sees the earlier as its owner; only two taking
    // over the same stale lock in the same instant could both pass (launchers are started by
    // people, not in tight loops).
    if (attempt === 3) throw new Error(`Could not take ${file}; remove it if no Bulkhead runs on this data folder.`);
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off("exit", release);
    // Only our own lock: never remove one a later owner took.
    if (readOwner(file)?.pid !== process.pid) return;
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  };
  process.on("exit", release);
  return release;
}

/**
 * `bulkhead start`'s take of the data folder: a CLI command that started the embedded database for
 * itself (`db migrate`, `keys rotate-master`, ...) holds the folder until it ends, so the start
 * waits for it (saying so once, at most `timeoutMs`) instead of being refused; another
 * `bulkhead start` is refused at once, naming it.
 */
export async function takeDataFolderWhenFree(dataDir: string, command: string, say: (line: string) => void, timeoutMs = 10 * 60_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    try {
      return takeDataFolder(dataDir, command);
    } catch (error) {
      if (!(error instanceof DataFolderBusyError) || error.owner.command === "start" || Date.now() >= deadline) throw error;
      if (!said) {
        say(`Waiting for ${error.owner.command} (pid ${error.owner.pid}) to finish: it is using the embedded database in ${dataDir}.`);
        said = true;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
