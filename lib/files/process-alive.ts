import { readFileSync } from "node:fs";

/**
 * Whether a process with this pid exists (signal 0 delivers nothing). A process owned by another
 * user answers EPERM and counts as alive. Not a positive integer: not alive.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The kernel's start time of a process (clock ticks since boot), or null where /proc cannot tell (not Linux, gone). */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may itself hold spaces and parentheses): the 22nd
    // field of the line, starttime, is the 20th after the ") " that ends the name.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether the process that wrote a lock still runs: its pid is alive and, where the lock holds the
 * start time and /proc can tell, that pid's process started when the owner did (a pid reused after
 * a crash or a reboot is another process).
 */
export function lockOwnerAlive(pid: number, startedAt: string | null): boolean {
  if (!processAlive(pid)) return false;
  if (startedAt === null) return true;
  const now = processStartTime(pid);
  return now === null || now === startedAt;
}
