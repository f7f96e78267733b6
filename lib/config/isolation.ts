import { createHash } from "node:crypto";
import path from "node:path";
import ipaddr from "ipaddr.js";
import { z } from "zod";
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
  /** A client that sends nothing for this long is treated as a raw TCP client (server speaks first). */
  BULKHEAD_SANDBOX_SNIFF_MS: z.coerce.number().int().min(50).max(10_000).default(500),
  /** uid:gid the sandboxed command runs as (no capabilities). */
  BULKHEAD_SANDBOX_USER: z
    .string()
    .regex(/^[0-9]+:[0-9]+$/, "must be uid:gid, for example 65534:65534")
    .default("65534:65534"),
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
  sniffMs: number;
  uid: number;
  gid: number;
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

/** The sandbox listener's and resolver's ports. */
export function sandboxListenPorts(source: Record<string, string | undefined> = process.env): number[] {
  const env = parseEnv(isolationSchema.pick({ BULKHEAD_SANDBOX_LISTEN_PORT: true, BULKHEAD_SANDBOX_DNS_PORT: true }), source);
  return [env.BULKHEAD_SANDBOX_LISTEN_PORT, env.BULKHEAD_SANDBOX_DNS_PORT];
}

export function loadIsolationConfig(dataDir: string, source: Record<string, string | undefined> = process.env): IsolationConfig {
  const env = parseEnv(isolationSchema, source);
  const [v4, v4bits] = ipaddr.parseCIDR(env.BULKHEAD_SANDBOX_POOL_V4);
  const [v6, v6bits] = ipaddr.parseCIDR(env.BULKHEAD_SANDBOX_POOL_V6);
  const network4 = ipaddr.IPv4.networkAddressFromCIDR(`${v4.toString()}/${v4bits}`).toString();
  const network6 = ipaddr.IPv6.networkAddressFromCIDR(`${v6.toString()}/${v6bits}`).toString();
  const [uid, gid] = env.BULKHEAD_SANDBOX_USER.split(":").map(Number) as [number, number];
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
    sniffMs: env.BULKHEAD_SANDBOX_SNIFF_MS,
    uid,
    gid,
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
