/**
 * How much of the machine one local sandbox may take. A sandbox shares its machine with the proxy
 * worker, the dashboard and the database: an agent that could fill the RAM (writing to its tmpfs
 * home, allocating) or the process table (a fork bomb) would take the enforcement layers down with
 * it. Pure: parsing and describing the limits; the launcher applies them
 * (proxy-worker/isolation/session.ts for the tmpfs sizes, ./cgroup.ts there for the rest).
 *
 * Sizes are binary (K = KiB = 1024 bytes), as tmpfs and cgroups read them. "Unlimited" is never a
 * value: 0, "max", "unlimited" and negative numbers are refused; an operator who wants no memory or
 * process limit turns them off by name (`--no-resource-limits`, BULKHEAD_SANDBOX_RESOURCE_LIMITS=off).
 */

export interface SandboxLimits {
  /** Size of the sandbox's private tmpfs home, in bytes. */
  homeBytes: number;
  /** Size of each private scratch tmpfs (/tmp, /var/tmp, /dev/shm, /run/lock), in bytes. */
  scratchBytes: number;
  /** Memory of all the sandbox's processes together (its tmpfs pages included), or null when off. */
  memoryBytes: number | null;
  /** Processes and threads of the sandbox together, or null when off. */
  pids: number | null;
}

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const TIB = 1024 * GIB;

/**
 * Defaults a workstation agent can live with: a home of 1 GiB holds a checkout and its
 * node_modules; 512 MiB per scratch directory holds a build's temporary files; 4 GiB of memory runs
 * a TypeScript or Next.js build; 1024 processes and threads run a test runner with workers (a
 * Node.js process alone has about 10 threads). All of it stays well below what the machine needs
 * for Bulkhead itself.
 */
export const DEFAULT_LIMITS: Readonly<SandboxLimits> = { homeBytes: 1 * GIB, scratchBytes: 512 * MIB, memoryBytes: 4 * GIB, pids: 1024 };

/** Bounds: below them a sandbox cannot even start its command; above them the value is a typo. */
export const SIZE_BOUNDS = { min: 1 * MIB, max: 1 * TIB } as const;
export const MEMORY_BOUNDS = { min: 16 * MIB, max: 16 * TIB } as const;
export const PIDS_BOUNDS = { min: 16, max: 4_194_304 } as const;

/** One tmpfs inode per 4 KiB page of its size: empty files and directories cost kernel memory but no pages. */
export const inodesFor = (bytes: number) => Math.max(64, Math.floor(bytes / 4096));

export class LimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LimitError";
  }
}

const UNITS: Record<string, number> = { "": 1, b: 1, k: KIB, kib: KIB, m: MIB, mib: MIB, g: GIB, gib: GIB, t: TIB, tib: TIB };

/** `what` names the flag or variable in the message, e.g. "--memory" or "BULKHEAD_SANDBOX_MEMORY". */
function parseBytes(value: string, what: string, bounds: { min: number; max: number }): number {
  const text = value.trim();
  if (/^(0+|max|unlimited|none|infinity|-1)$/i.test(text)) {
    throw new LimitError(`${what} must be a size such as 512MiB or 2GiB; "${text}" would mean no limit, which is not a value (turn the memory and process limits off with --no-resource-limits or BULKHEAD_SANDBOX_RESOURCE_LIMITS=off)`);
  }
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(text);
  if (!m) throw new LimitError(`${what} must be a size such as 512MiB or 2GiB (a number and one of B, K/KiB, M/MiB, G/GiB, T/TiB), not "${text.slice(0, 40)}"`);
  const unit = m[2]!.toLowerCase();
  if (/^[kmgt]b$/.test(unit)) throw new LimitError(`${what}: write ${m[1]}${unit[0]!.toUpperCase()}iB (sizes are binary: 1 KiB = 1024 bytes), not "${text}"`);
  const factor = UNITS[unit];
  if (factor === undefined) throw new LimitError(`${what}: unknown unit "${m[2]}" in "${text}" (use B, K/KiB, M/MiB, G/GiB or T/TiB)`);
  const bytes = Math.floor(Number(m[1]) * factor);
  if (bytes < bounds.min || bytes > bounds.max) throw new LimitError(`${what} must be between ${formatBytes(bounds.min)} and ${formatBytes(bounds.max)}, not ${text}`);
  return bytes;
}

export const parseHomeSize = (value: string, what = "--home-size") => parseBytes(value, what, SIZE_BOUNDS);
export const parseScratchSize = (value: string, what = "--scratch-size") => parseBytes(value, what, SIZE_BOUNDS);
export const parseMemory = (value: string, what = "--memory") => parseBytes(value, what, MEMORY_BOUNDS);

export function parsePids(value: string, what = "--pids"): number {
  const text = value.trim();
  if (/^(0+|max|unlimited|none|infinity|-1)$/i.test(text)) {
    throw new LimitError(`${what} must be a number of processes such as 512; "${text}" would mean no limit, which is not a value (turn the memory and process limits off with --no-resource-limits or BULKHEAD_SANDBOX_RESOURCE_LIMITS=off)`);
  }
  if (!/^[0-9]+$/.test(text)) throw new LimitError(`${what} must be a whole number of processes such as 512, not "${text.slice(0, 40)}"`);
  const n = Number(text);
  if (n < PIDS_BOUNDS.min || n > PIDS_BOUNDS.max) throw new LimitError(`${what} must be between ${PIDS_BOUNDS.min} and ${PIDS_BOUNDS.max}, not ${text}`);
  return n;
}

/** 1073741824 -> "1 GiB", 1536 MiB -> "1.5 GiB", 5000 -> "4.9 KiB". */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [["TiB", TIB], ["GiB", GIB], ["MiB", MIB], ["KiB", KIB]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} B`;
}

/** The per-run overrides (`sandbox run` flags); each one already parsed. */
export interface LimitOverrides {
  homeSize?: string;
  scratchSize?: string;
  memory?: string;
  pids?: string;
  /** `--no-resource-limits`: no memory or process limit for this run (the tmpfs sizes stay). */
  noResourceLimits?: boolean;
}

/** The configured limits with a run's flags applied; throws LimitError naming the flag. */
export function applyOverrides(base: SandboxLimits, o: LimitOverrides): SandboxLimits {
  if (o.noResourceLimits && (o.memory !== undefined || o.pids !== undefined)) {
    throw new LimitError("--no-resource-limits turns the memory and process limits off: give it or --memory/--pids, not both");
  }
  const limits: SandboxLimits = {
    homeBytes: o.homeSize !== undefined ? parseHomeSize(o.homeSize) : base.homeBytes,
    scratchBytes: o.scratchSize !== undefined ? parseScratchSize(o.scratchSize) : base.scratchBytes,
    memoryBytes: o.memory !== undefined ? parseMemory(o.memory) : base.memoryBytes,
    pids: o.pids !== undefined ? parsePids(o.pids) : base.pids,
  };
  if (o.noResourceLimits) return { ...limits, memoryBytes: null, pids: null };
  // A limit given on the command line with the limits switched off in the environment: the flag wins for both.
  if ((o.memory !== undefined || o.pids !== undefined) && (limits.memoryBytes === null || limits.pids === null)) {
    return { ...limits, memoryBytes: limits.memoryBytes ?? DEFAULT_LIMITS.memoryBytes, pids: limits.pids ?? DEFAULT_LIMITS.pids };
  }
  return limits;
}

/** One line for listings and logs: "home 1 GiB, scratch 512 MiB each, memory 4 GiB, 1024 processes". */
export function describeLimits(l: SandboxLimits): string {
  const resources = l.memoryBytes === null || l.pids === null ? "no memory or process limit" : `memory ${formatBytes(l.memoryBytes)}, ${l.pids} processes`;
  return `home ${formatBytes(l.homeBytes)}, scratch ${formatBytes(l.scratchBytes)} each, ${resources}`;
}

/** What a sandbox's row keeps (JSON): the limits it ran with and how the memory/process ones were applied. */
export interface RecordedLimits extends SandboxLimits {
  /** "cgroup v2", "cgroup v1", or "off" (opted out). */
  enforcedBy: string;
}

export function isRecordedLimits(value: unknown): value is RecordedLimits {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.homeBytes === "number" && typeof v.scratchBytes === "number" && typeof v.enforcedBy === "string";
}
