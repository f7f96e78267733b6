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
