import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import path from "node:path";
import ipaddr from "ipaddr.js";
import { z } from "zod";
import { DEFAULT_LIMITS, formatBytes, LimitError, MEMORY_BOUNDS, parseHomeSize, parseMemory, parsePids, parseScratchSize, PIDS_BOUNDS, SIZE_BOUNDS, type SandboxLimits } from "@/lib/sandboxes/limits";
import { parseEnv, port } from "./env";

/**
 * Layer 3 (network isolation) settings, read by the worker (sandbox listener, resolver) and the
 * privileged `bulkhead sandbox` commands. Both must agree, so both read them here.
 */
const cidr = (family: "ipv4" | "ipv6", min: number, max: number) =>
  z.string().refine((v) => {
    try {
      const [addr, bits] = ipaddr.parseCIDR(v);
      return addr.kind() === family && bits >= min && bits <= max;
    } catch {
      return false;
    }
  }, `must be an ${family === "ipv4" ? "IPv4" : "IPv6"} CIDR with a prefix between /${min} and /${max}`);

/** A limit variable read with the same parser as its `sandbox run` flag; the message never repeats the value. */
const limit = <T>(parse: (value: string) => T, rule: string) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return undefined;
      try {
        return parse(value);
      } catch (error) {
        if (!(error instanceof LimitError)) throw error;
        ctx.addIssue({ code: "custom", message: `${rule}; 0, max and unlimited are not values (BULKHEAD_SANDBOX_RESOURCE_LIMITS=off turns the memory and process limits off)` });
        return z.NEVER;
      }
    });

const sizeRule = (bounds: { min: number; max: number }) => `must be a size such as 512MiB or 2GiB, between ${formatBytes(bounds.min)} and ${formatBytes(bounds.max)}`;

/** Ids up to 2^32 - 2: (uid_t) -1 means "unchanged" to the kernel. */
const MAX_ID = 4_294_967_294;

const isolationSchema = z.object({
  /** `auto`: on when the worker may manage the fence (Linux, CAP_NET_ADMIN); `on` insists; `off` never. */
  BULKHEAD_ISOLATION: z.enum(["auto", "on", "off"]).default("auto"),
  /** Names this Bulkhead's sandboxes, interfaces and fence table; two instances on one machine must differ. */
  BULKHEAD_INSTANCE_ID: z
    .string()
    .regex(/^[a-z0-9]{1,4}$/, "must be 1 to 4 lower-case letters or digits (it is part of 15-character interface names)")
    .optional(),
  BULKHEAD_SANDBOX_POOL_V4: cidr("ipv4", 8, 30).default("10.213.0.0/16"),
  BULKHEAD_SANDBOX_POOL_V6: cidr("ipv6", 48, 120).default("fd42:b17e:ad00::/48"),
  /** Port of the sandbox listener on the gateway addresses (every captured TCP connection). */
  BULKHEAD_SANDBOX_LISTEN_PORT: port.default(15001),
  /** Port of the sandbox resolver on the gateway addresses (UDP and TCP). */
  BULKHEAD_SANDBOX_DNS_PORT: port.default(15053),
  /** TTL of the resolver's answers, in seconds. */
  BULKHEAD_SANDBOX_DNS_TTL_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /** Queries a second one sandbox address may send the resolver (twice that in a burst); more get no answer. */
  BULKHEAD_SANDBOX_DNS_QUERIES_PER_SECOND: z.coerce.number({ error: "must be a number of queries a second" }).int("must be a whole number").min(1, "must be at least 1").max(100_000, "must be at most 100000").default(200),
  /** Leaf certificates one sandbox may have the worker mint a minute (as many in a burst); past it, handshakes needing a new one are closed. */
  BULKHEAD_SANDBOX_LEAVES_PER_MINUTE: z.coerce.number({ error: "must be a number of certificates a minute" }).int("must be a whole number").min(1, "must be at least 1").max(100_000, "must be at most 100000").default(120),
  /** A client that sends nothing for this long is treated as a raw TCP client (server speaks first). */
  BULKHEAD_SANDBOX_SNIFF_MS: z.coerce.number().int().min(50).max(10_000).default(500),
  /** uid:gid the sandboxed command runs as (no capabilities). */
  BULKHEAD_SANDBOX_USER: z
    .string()
    .regex(/^[0-9]+:[0-9]+$/, "must be uid:gid, for example 65534:65534")
    .refine((v) => v.split(":").every((n) => Number(n) <= MAX_ID), `must be uid:gid with each at most ${MAX_ID}`)
    .refine((v) => v.split(":").every((n) => Number(n) !== 0), "must not be root (uid or gid 0): without capabilities root still owns the host's root-owned files, Bulkhead's data folder among them")
    .default("65534:65534"),
  /** Size of each sandbox's private tmpfs home (default 1GiB). */
  BULKHEAD_SANDBOX_HOME_SIZE: limit(parseHomeSize, sizeRule(SIZE_BOUNDS)),
  /** Size of each private scratch tmpfs: /tmp, /var/tmp, /dev/shm, /run/lock (default 512MiB). */
  BULKHEAD_SANDBOX_SCRATCH_SIZE: limit(parseScratchSize, sizeRule(SIZE_BOUNDS)),
  /** Memory of a sandbox's processes together, tmpfs included (default 4GiB; a cgroup). */
  BULKHEAD_SANDBOX_MEMORY: limit(parseMemory, sizeRule(MEMORY_BOUNDS)),
  /** Processes and threads of a sandbox together (default 1024; a cgroup). */
  BULKHEAD_SANDBOX_PIDS: limit(parsePids, `must be a whole number of processes between ${PIDS_BOUNDS.min} and ${PIDS_BOUNDS.max}`),
  /**
   * `on`: a sandbox runs in a cgroup with the memory and process limits, and is refused where no
   * cgroup can be made; `off`: no memory or process limit (the tmpfs sizes stay).
   */
  BULKHEAD_SANDBOX_RESOURCE_LIMITS: z.enum(["on", "off"], { error: "must be on or off" }).default("on"),
  /** How long `sandbox verify` (and `run --verify`) waits for its probe before failing. */
  BULKHEAD_SANDBOX_VERIFY_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(3600).default(120),
});

export interface IsolationConfig {
  mode: "auto" | "on" | "off";
  instanceId: string;
  poolV4: { network: string; prefix: number };
  poolV6: { network: string; prefix: number };
  /** The host side's service address (first address of each pool), on the host namespace's `lo`. */
  gatewayV4: string;
  gatewayV6: string;
  listenPort: number;
  dnsPort: number;
  dnsTtlSeconds: number;
  /** Per sandbox address: the resolver's sustained rate (its burst is twice this). */
  dnsQueriesPerSecond: number;
  /** Per sandbox: leaf certificates minted a minute (and in a burst). */
  leavesPerMinute: number;
  sniffMs: number;
  uid: number;
  gid: number;
  /** What each sandbox may take (`sandbox run` flags override them per run). */
  limits: SandboxLimits;
  verifyTimeoutMs: number;
}

/** A stable instance id from the data folder: two data folders never share sandboxes by accident. */
export function instanceIdFor(dataDir: string): string {
  const digest = createHash("sha256").update(path.resolve(dataDir)).digest();
  return (digest.readUInt32BE(0) % 36 ** 4).toString(36).padStart(4, "0");
}

function firstHost(network: string): string {
  const bytes = ipaddr.parse(network).toByteArray();
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) + 1;
  return ipaddr.fromByteArray(bytes).toString();
}

/**
 * The sandbox gateways, the first address of each pool: on the `lo` of the worker's machine while
 * isolation runs, so every process there can connect from them.
 */
export function sandboxGateways(source: Record<string, string | undefined> = process.env): string[] {
  const env = parseEnv(isolationSchema.pick({ BULKHEAD_SANDBOX_POOL_V4: true, BULKHEAD_SANDBOX_POOL_V6: true }), source);
  const [v4, v4bits] = ipaddr.parseCIDR(env.BULKHEAD_SANDBOX_POOL_V4);
  const [v6, v6bits] = ipaddr.parseCIDR(env.BULKHEAD_SANDBOX_POOL_V6);
  return [firstHost(ipaddr.IPv4.networkAddressFromCIDR(`${v4.toString()}/${v4bits}`).toString()), firstHost(ipaddr.IPv6.networkAddressFromCIDR(`${v6.toString()}/${v6bits}`).toString())];
}

/** The sandbox listener's and resolver's ports. */
export function sandboxListenPorts(source: Record<string, string | undefined> = process.env): number[] {
  const env = parseEnv(isolationSchema.pick({ BULKHEAD_SANDBOX_LISTEN_PORT: true, BULKHEAD_SANDBOX_DNS_PORT: true }), source);
  return [env.BULKHEAD_SANDBOX_LISTEN_PORT, env.BULKHEAD_SANDBOX_DNS_PORT];
}

/**
 * The sandbox user may own nothing of Bulkhead's: a sandbox's command needs no capability to read
 * its own user's files, so a sandbox running as the user Bulkhead runs as, or as the owner of the
 * data folder (its master key, the audit log, the CA), could read the keys that mint task tokens
 * for any task. Checked where the configuration is read (the launcher, `sandbox run`, the worker).
 */
export function sandboxUserProblem(uid: number, dataDir: string, ownUid: number | null = process.getuid?.() ?? null): string | null {
  if (ownUid !== null && uid === ownUid) return `BULKHEAD_SANDBOX_USER must not be the user Bulkhead runs as (uid ${uid}): a sandbox's command could read Bulkhead's own files`;
  let owner: number | null = null;
  try {
    owner = statSync(dataDir).uid;
  } catch {
    // No data folder yet: it will be made by the user Bulkhead runs as, checked above.
  }
  if (owner !== null && uid === owner) return `BULKHEAD_SANDBOX_USER must not be the owner of the data folder ${dataDir} (uid ${uid}): a sandbox's command could read its keys`;
  return null;
}

export function loadIsolationConfig(dataDir: string, source: Record<string, string | undefined> = process.env): IsolationConfig {
  const env = parseEnv(isolationSchema, source);
  const [v4, v4bits] = ipaddr.parseCIDR(env.BULKHEAD_SANDBOX_POOL_V4);
  const [v6, v6bits] = ipaddr.parseCIDR(env.BULKHEAD_SANDBOX_POOL_V6);
  const network4 = ipaddr.IPv4.networkAddressFromCIDR(`${v4.toString()}/${v4bits}`).toString();
  const network6 = ipaddr.IPv6.networkAddressFromCIDR(`${v6.toString()}/${v6bits}`).toString();
  const [uid, gid] = env.BULKHEAD_SANDBOX_USER.split(":").map(Number) as [number, number];
  // With isolation off no sandbox runs: a worker may then run as that user itself (a container
  // run as nobody), and refusing it would stop the proxy for a setting that is not used.
  const problem = env.BULKHEAD_ISOLATION === "off" ? null : sandboxUserProblem(uid, dataDir);
  if (problem) throw new Error(problem);
  return {
    mode: env.BULKHEAD_ISOLATION,
    instanceId: env.BULKHEAD_INSTANCE_ID ?? instanceIdFor(dataDir),
    poolV4: { network: network4, prefix: v4bits },
    poolV6: { network: network6, prefix: v6bits },
    gatewayV4: firstHost(network4),
    gatewayV6: firstHost(network6),
    listenPort: env.BULKHEAD_SANDBOX_LISTEN_PORT,
    dnsPort: env.BULKHEAD_SANDBOX_DNS_PORT,
    dnsTtlSeconds: env.BULKHEAD_SANDBOX_DNS_TTL_SECONDS,
    dnsQueriesPerSecond: env.BULKHEAD_SANDBOX_DNS_QUERIES_PER_SECOND,
    leavesPerMinute: env.BULKHEAD_SANDBOX_LEAVES_PER_MINUTE,
    sniffMs: env.BULKHEAD_SANDBOX_SNIFF_MS,
    uid,
    gid,
    limits: {
      homeBytes: env.BULKHEAD_SANDBOX_HOME_SIZE ?? DEFAULT_LIMITS.homeBytes,
      scratchBytes: env.BULKHEAD_SANDBOX_SCRATCH_SIZE ?? DEFAULT_LIMITS.scratchBytes,
      memoryBytes: env.BULKHEAD_SANDBOX_RESOURCE_LIMITS === "off" ? null : (env.BULKHEAD_SANDBOX_MEMORY ?? DEFAULT_LIMITS.memoryBytes),
      pids: env.BULKHEAD_SANDBOX_RESOURCE_LIMITS === "off" ? null : (env.BULKHEAD_SANDBOX_PIDS ?? DEFAULT_LIMITS.pids),
    },
    verifyTimeoutMs: env.BULKHEAD_SANDBOX_VERIFY_TIMEOUT_SECONDS * 1000,
  };
}

/** What a sandboxed command inherits from whoever started it: the basics, never secrets or proxies. */
const INHERITED = ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "COLORTERM"] as const;

export function sandboxBaseEnvironment(source: Record<string, string | undefined> = process.env): Record<string, string> {
  // HOME is the sandbox's own (proxy-worker/isolation/session.ts), unless --env sets one.
  const env: Record<string, string> = { PATH: "/usr/local/bin:/usr/bin:/bin" };
  for (const name of INHERITED) {
    const value = source[name];
    if (value !== undefined && value !== "") env[name] = value;
  }
  return env;
}
