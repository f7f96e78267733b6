/**
 * The fence: one nftables table per Bulkhead instance, in the host network namespace, where the
 * agent inside a sandbox cannot reach it. From any sandbox interface (`bh<instance>h*`):
 *   - every TCP connection, whatever its address or port, IPv4 and IPv6, is DNAT'ed to the
 *     sandbox listener on the gateway address; DNS (UDP and TCP 53) to the resolver;
 *   - nothing else is accepted: other UDP, ICMP, other protocols, and anything that would be
 *     forwarded are dropped and counted per (source, destination, protocol, port) in a dynamic
 *     set the worker reads; only the neighbour discovery the link itself needs is let through;
 *   - a packet whose source address does not belong to the interface it came in on is dropped
 *     (no sandbox can speak with another one's address);
 *   - a packet from a link-local address (fe80::/10: every interface has one, and any program may
 *     bind to it) is dropped before the capture, except the neighbour discovery the link needs,
 *     and counted by the interface it came in on: its address names no sandbox, the interface does;
 *   - nothing is forwarded into a sandbox.
 * The table exists before any sandbox interface comes up (the launcher ensures it first) and is
 * never removed by Bulkhead: when the worker dies, connections find nothing listening (fail closed).
 */
import { createHash } from "node:crypto";
import type { IsolationConfig } from "@/lib/config/isolation";
import { IsolationError, run, type ToolRunner } from "./exec";
import { fenceTable, hostIfPrefix, slotOfInterface } from "./names";
import { slotAddresses } from "./pool";

type FenceConfig = Pick<IsolationConfig, "instanceId" | "gatewayV4" | "gatewayV6" | "listenPort" | "dnsPort">;

const PORTED = "{ tcp, udp, sctp, udplite }";

function body(c: FenceConfig): string {
  const ifs = `iifname "${hostIfPrefix(c.instanceId)}*"`;
  const gw4 = c.gatewayV4;
  const gw6 = c.gatewayV6;
  return `  set drops4 {
    type ipv4_addr . ipv4_addr . inet_proto . inet_service
    flags dynamic, timeout
    timeout 1h
    size 65536
    counter
  }
  set drops6 {
    type ipv6_addr . ipv6_addr . inet_proto . inet_service
    flags dynamic, timeout
    timeout 1h
    size 65536
    counter
  }
  set drops6ll {
    type ifname . ipv6_addr . inet_proto . inet_service
    flags dynamic, timeout
    timeout 1h
    size 65536
    counter
  }
  chain guard {
    type filter hook prerouting priority raw; policy accept;
    ${ifs} fib saddr . iif oif missing counter drop
    ${ifs} ip6 saddr fe80::/10 jump link_local
  }
  chain link_local {
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 return
    icmpv6 type { nd-router-solicit, mld-listener-report, mld2-listener-report } return
    meta l4proto ${PORTED} update @drops6ll { iifname . ip6 daddr . meta l4proto . th dport }
    meta l4proto != ${PORTED} update @drops6ll { iifname . ip6 daddr . meta l4proto . 0 }
    counter drop
  }
  chain capture {
    type nat hook prerouting priority dstnat - 10; policy accept;
    ${ifs} meta nfproto ipv4 meta l4proto { tcp, udp } th dport 53 dnat ip to ${gw4}:${c.dnsPort}
    ${ifs} meta nfproto ipv4 meta l4proto tcp dnat ip to ${gw4}:${c.listenPort}
    ${ifs} meta nfproto ipv6 meta l4proto { tcp, udp } th dport 53 dnat ip6 to [${gw6}]:${c.dnsPort}
    ${ifs} meta nfproto ipv6 meta l4proto tcp dnat ip6 to [${gw6}]:${c.listenPort}
  }
  chain admit {
    type filter hook input priority filter - 10; policy accept;
    ${ifs} jump from_sandbox
  }
  chain relay {
    type filter hook forward priority filter - 10; policy accept;
    ${ifs} jump blocked
    oifname "${hostIfPrefix(c.instanceId)}*" counter drop
  }
  chain from_sandbox {
    ip daddr ${gw4} tcp dport ${c.listenPort} accept
    ip daddr ${gw4} meta l4proto { tcp, udp } th dport ${c.dnsPort} accept
    ip6 daddr ${gw6} tcp dport ${c.listenPort} accept
    ip6 daddr ${gw6} meta l4proto { tcp, udp } th dport ${c.dnsPort} accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept
    icmpv6 type { nd-router-solicit, mld-listener-report, mld2-listener-report } ip6 saddr fe80::/10 drop
    jump blocked
  }
  chain blocked {
    meta nfproto ipv4 meta l4proto ${PORTED} update @drops4 { ip saddr . ip daddr . meta l4proto . th dport }
    meta nfproto ipv4 meta l4proto != ${PORTED} update @drops4 { ip saddr . ip daddr . meta l4proto . 0 }
    meta nfproto ipv6 meta l4proto ${PORTED} update @drops6 { ip6 saddr . ip6 daddr . meta l4proto . th dport }
    meta nfproto ipv6 meta l4proto != ${PORTED} update @drops6 { ip6 saddr . ip6 daddr . meta l4proto . 0 }
    counter drop
  }
`;
}

/**
 * True when one instance's fence would match the other's interfaces: the fence matches
 * `bh<id>h*`, so an id followed by "h" that begins another id (`a` and `ah12`: `bhah*` matches
 * `bhah12h3`) takes in that instance's sandboxes too. Ids of the same length never overlap.
 */
export function interfacesOverlap(a: string, b: string): boolean {
  if (a === b) return false;
  const [pa, pb] = [hostIfPrefix(a), hostIfPrefix(b)];
  return pa.startsWith(pb) || pb.startsWith(pa);
}

/** The ruleset, exactly as installed (docs/isolation.md prints it). The comment names its version. */
export function renderFence(c: FenceConfig): string {
  const inner = body(c);
  const version = createHash("sha256").update(inner).digest("hex").slice(0, 12);
  return `table inet ${fenceTable(c.instanceId)} {\n  comment "bulkhead fence ${version}"\n${inner}}\n`;
}

function versionOf(ruleset: string): string {
  return /comment "bulkhead fence ([0-9a-f]+)"/.exec(ruleset)?.[1] ?? "";
}

/**
 * Installs the fence when it is missing or differs, atomically (one nft transaction replaces the
 * whole table, so there is no moment without it), and puts the gateway addresses on `lo`.
 * Idempotent; safe to call from several launchers at once.
 */
export async function ensureFence(c: FenceConfig): Promise<{ changed: boolean }> {
  const tables = (await run("nft", ["list", "tables"]).then((r) => r.stdout, () => "")).split("\n");
  for (const line of tables) {
    const other = /^table inet bulkhead_([a-z0-9]+)$/.exec(line.trim())?.[1];
    if (other && interfacesOverlap(c.instanceId, other)) {
      throw new IsolationError(
        `BULKHEAD_INSTANCE_ID ${c.instanceId} and the instance ${other} on this machine would match each other's sandbox interfaces (bh${c.instanceId}h* and bh${other}h*): one fence would capture, and drop, the other's traffic; give one of them another id. The fence was not installed.`,
        "instance_overlap",
      );
    }
  }
  await run("ip", ["addr", "replace", `${c.gatewayV4}/32`, "dev", "lo"]);
  await run("ip", ["-6", "addr", "replace", `${c.gatewayV6}/128`, "dev", "lo"]);
  const wanted = renderFence(c);
  const current = await run("nft", ["list", "table", "inet", fenceTable(c.instanceId)]).then(
    (r) => r.stdout,
    () => "",
  );
  if (current && versionOf(current) === versionOf(wanted)) return { changed: false };
  const table = `inet ${fenceTable(c.instanceId)}`;
  await run("nft", ["-f", "-"], { input: `table ${table}\ndelete table ${table}\n${wanted}` });
  return { changed: true };
}

/**
 * Removes this instance's fence when nothing needs it: no sandbox namespace of this instance is
 * left (a live sandbox keeps its fence, so its traffic still cannot leave). The gateway addresses
 * on `lo` go too once no Bulkhead fence at all remains (instances with the default pool share
 * them). Returns what was removed.
 */
export async function removeFenceIfUnused(c: FenceConfig, liveNetns: readonly string[]): Promise<string[]> {
  if (liveNetns.length > 0) return [];
  const removed: string[] = [];
  const table = fenceTable(c.instanceId);
  if (await fencePresent(c.instanceId)) {
    await run("nft", ["delete", "table", "inet", table]);
    removed.push(`table inet ${table}`);
  }
  const tables = (await run("nft", ["list", "tables"]).then((r) => r.stdout, () => "")).split("\n");
  if (!tables.some((t) => /^table inet bulkhead_[a-z0-9]+$/.test(t.trim()))) {
    for (const [family, address] of [["-4", `${c.gatewayV4}/32`], ["-6", `${c.gatewayV6}/128`]] as const) {
      const r = await run("ip", [family, "addr", "del", address, "dev", "lo"]).then(() => true, () => false);
      if (r) removed.push(`${address} on lo`);
    }
  }
  return removed;
}

/** True when this instance's fence table is installed (whatever its version). */
export async function fencePresent(instanceId: string): Promise<boolean> {
  return run("nft", ["list", "table", "inet", fenceTable(instanceId)]).then(
    () => true,
    () => false,
  );
}

export interface DropCount {
  /** The source address; for a link-local one, the IPv6 address of the sandbox whose interface it came in on. */
  source: string;
  destination: string;
  /** IP protocol name or number as nft prints it (tcp, udp, icmp, ipv6-icmp, ...). */
  protocol: string;
  /** Destination port; 0 for protocols without ports. */
  port: number;
  packets: number;
  /** Sent from a link-local address (counted by its interface, `drops6ll`). */
  linkLocal?: boolean;
}

interface NftSetElem {
  elem?: { val?: { concat?: unknown[] }; counter?: { packets?: number } };
}

/**
 * Reads the per-flow drop counters of both families (`nft -j`). The worker passes its ToolHost,
 * so that the periodic read never forks the worker (tool-host.ts).
 */
export async function readDrops(c: Pick<IsolationConfig, "instanceId" | "poolV4" | "poolV6">, tools: ToolRunner = { run }): Promise<DropCount[]> {
  const out: DropCount[] = [];
  for (const set of ["drops4", "drops6", "drops6ll"]) {
    // A fence of an earlier version (installed by an older launcher, until the next one replaces
    // it) has no drops6ll: its other counters are still read.
    const listed = await tools.run("nft", ["-j", "list", "set", "inet", fenceTable(c.instanceId), set]).catch((error: unknown) => {
      if (set === "drops6ll") return null;
      throw error;
    });
    if (!listed) continue;
    const { stdout } = listed;
    const parsed = JSON.parse(stdout) as { nftables?: Array<{ set?: { elem?: NftSetElem[] } }> };
    for (const entry of parsed.nftables ?? []) {
      for (const e of entry.set?.elem ?? []) {
        const concat = e.elem?.val?.concat;
        if (!Array.isArray(concat) || concat.length !== 4) continue;
        const flow: DropCount = {
          source: String(concat[0]),
          destination: String(concat[1]),
          protocol: String(concat[2]),
          port: Number(concat[3]) || 0,
          packets: e.elem?.counter?.packets ?? 0,
        };
        if (set === "drops6ll") {
          // The interface is the sandbox's (the guard dropped anything else); its slot names the
          // address its row holds. An interface that is no slot's stays as its name: unbound.
          const slot = slotOfInterface(c.instanceId, flow.source);
          if (slot !== null) flow.source = slotAddresses(c, slot).v6;
          flow.linkLocal = true;
        }
        out.push(flow);
      }
    }
  }
  return out;
}
