/** Percentiles, medians and CPU accounting from /proc, shared by the load generator and the report. */
import { readdirSync, readFileSync } from "node:fs";

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Percentiles of the finite values (nearest-rank on the sorted samples). */
export function percentiles(values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(Array.prototype.filter.call(values, Number.isFinite) as number[]).sort();
  const n = sorted.length;
  if (n === 0) return { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN };
  const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: sorted[n - 1]!, mean: sum / n };
}

export function median(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** Busy and total jiffies per CPU ("cpu0", "cpu1", ...). */
export function cpuTimes(): Record<string, { busy: number; total: number }> {
  const out: Record<string, { busy: number; total: number }> = {};
  try {
    for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
      const m = /^(cpu\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const f = m[2]!.trim().split(/\s+/).map(Number);
      const idle = (f[3] ?? 0) + (f[4] ?? 0);
      const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
      out[m[1]!] = { busy: total - idle, total };
    }
  } catch {
    // not Linux: no per-core accounting
  }
  return out;
}

/** Per-core busy percentage between two cpuTimes() readings. */
export function coreBusy(before: ReturnType<typeof cpuTimes>, after: ReturnType<typeof cpuTimes>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cpu, a] of Object.entries(after)) {
    const b = before[cpu];
    if (!b || a.total === b.total) continue;
    out[cpu] = Math.round((100 * (a.busy - b.busy)) / (a.total - b.total));
  }
  return out;
}

/** CPU seconds (user + system) a process has used so far; NaN when it is gone. */
export function processCpuSeconds(pid: number): number {
  return statSeconds(pid, 11, 12);
}

/** The sum of two clock-tick fields of /proc/<pid>/stat (counted after the command name), in seconds. */
function statSeconds(pid: number, a: number, b: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces; fields after it start at ") ".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[a]) + Number(fields[b])) / TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds of `pid`'s children that have exited and been waited for (cutime + cstime): work a
 * sampled process tree misses, such as PostgreSQL's autovacuum workers that came and went.
 */
export function reapedChildrenCpuSeconds(pid: number): number {
  return statSeconds(pid, 13, 14);
}

/** Resident set size in MiB; NaN when the process is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : NaN;
  } catch {
    return NaN;
  }
}

export const round = (v: number, digits = 0) => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : NaN);

/** Direct children of `pid` (e.g. nginx's worker under its master). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** `pid` and all its descendants (e.g. a Postgres server and its backends). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childPids(out[i]!));
  return out;
}
