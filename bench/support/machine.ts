import { readFileSync } from "node:fs";
import os from "node:os";
import { coreBusy, cpuTimes } from "./stats";

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  os: string;
  date: string;
  /** Busy % per core while the bench itself was idle: other tenants of a shared machine. */
  backgroundBusy: Record<string, number>;
}

function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown";
  } catch {
    return os.cpus()[0]?.model.trim() ?? "unknown";
  }
}

function osName(): string {
  try {
    return /PRETTY_NAME="([^"]+)"/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

/** Describes the machine, sampling `sampleMs` of background CPU use. */
export async function describeMachine(sampleMs = 2_000): Promise<Machine> {
  const before = cpuTimes();
  await new Promise((r) => setTimeout(r, sampleMs));
  return {
    nproc: os.cpus().length,
    cpuModel: cpuModel(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: os.release(),
    os: osName(),
    date: new Date().toISOString(),
    backgroundBusy: coreBusy(before, cpuTimes()),
  };
}
