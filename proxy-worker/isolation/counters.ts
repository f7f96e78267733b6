/** How often the worker reads the fence's per-flow drop counters (blocked escape attempts). */
export const COUNTER_MS = 2000;
/** With no sandbox bound, the counters are still read this often (drops from a sandbox the policy no longer knows). */
export const IDLE_COUNTER_MS = 60_000;

/**
 * Whether the fence's drop counters are due for a read. Each read runs `nft` twice (through the
 * worker's ToolHost, so the worker itself does not fork: a fork of the worker stalled its event
 * loop for tens of milliseconds under load), and `nft` still costs CPU beside the requests, so
 * they are read every COUNTER_MS only while a sandbox is bound (and once more after the last one
 * goes, for its final drops), else every IDLE_COUNTER_MS.
 */
export function counterReadDue(o: { bound: boolean; boundAtLastRead: boolean; msSinceLastRead: number }): boolean {
  // A tick may come a little early: timers are not exact.
  if (o.bound || o.boundAtLastRead) return o.msSinceLastRead >= COUNTER_MS / 2;
  return o.msSinceLastRead >= IDLE_COUNTER_MS - COUNTER_MS / 2;
}
