/**
 * The kernel side of one sandbox: a network namespace joined to the host namespace by a veth
 * pair, the sandbox's /32 and /128 from the pool, host routes to them, and the sandbox's default
 * routes via the gateway (IPv4: the gateway address on the host's `lo`; IPv6: fe80::1 on the
 * host-side veth). Every step is undone if a later one fails: nothing is left half-created.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { IsolationConfig } from "@/lib/config/isolation";
import { readCgroupRecord, removeSandboxCgroup } from "./cgroup";
import { IsolationError, run } from "./exec";
import { ensureFence } from "./fence";
import { hostIfPrefix, isOwnNetns, type SandboxNames } from "./names";
import type { SlotAddresses } from "./pool";

/** Per-sandbox files the launcher owns (CA bundle, launcher pid), readable by the sandbox user. */
export const RUN_DIR = "/run/bulkhead-sandbox";
const HOST_LINK_LOCAL = "fe80::1";

export const sandboxRunDir = (netns: string) => path.join(RUN_DIR, netns);

const writeProc = (file: string, value: string) => `echo ${value} > ${file}`;

/** Sysctls inside the sandbox: no router advertisements or solicitations, no autoconfiguration. */
const SANDBOX_SYSCTLS = [
  "/proc/sys/net/ipv6/conf/all/accept_ra",
  "/proc/sys/net/ipv6/conf/default/accept_ra",
  "/proc/sys/net/ipv6/conf/all/autoconf",
  "/proc/sys/net/ipv6/conf/default/autoconf",
  "/proc/sys/net/ipv6/conf/all/router_solicitations",
  "/proc/sys/net/ipv6/conf/default/router_solicitations",
];

export async function createSandboxNetwork(config: IsolationConfig, names: SandboxNames, addresses: SlotAddresses): Promise<void> {
  // The fence first: no sandbox interface ever exists without it.
  await ensureFence(config);
  const undo: Array<() => Promise<unknown>> = [];
  try {
    await run("ip", ["netns", "add", names.netns]);
    undo.push(() => run("ip", ["netns", "del", names.netns]));
    const etc = path.join("/etc/netns", names.netns);
    await mkdir(etc, { recursive: true, mode: 0o755 });
    undo.push(() => rm(etc, { recursive: true, force: true }));
    // `ip netns exec` bind-mounts these over /etc/resolv.conf and /etc/hosts inside the sandbox.
    await writeFile(path.join(etc, "resolv.conf"), `# Bulkhead sandbox: DNS answers come from Bulkhead's resolver\nnameserver ${config.gatewayV4}\nnameserver ${config.gatewayV6}\noptions edns0\n`, { mode: 0o644 });
    await writeFile(path.join(etc, "hosts"), "127.0.0.1 localhost\n::1 localhost ip6-localhost\n", { mode: 0o644 });
    await run("ip", ["netns", "exec", names.netns, "/bin/sh", "-c", SANDBOX_SYSCTLS.map((f) => writeProc(f, "0")).join(" && ")]);
    await run("ip", ["-n", names.netns, "link", "set", "lo", "up"]);

    await run("ip", ["link", "add", names.hostIf, "type", "veth", "peer", "name", names.sandboxIf, "netns", names.netns]);
    undo.push(() => run("ip", ["link", "del", names.hostIf]));
    await run("ip", ["netns", "exec", names.netns, "/bin/sh", "-c", writeProc(`/proc/sys/net/ipv6/conf/${names.sandboxIf}/router_solicitations`, "0")]);
    await run("/bin/sh", ["-c", [writeProc(`/proc/sys/net/ipv6/conf/${names.hostIf}/accept_ra`, "0"), writeProc(`/proc/sys/net/ipv6/conf/${names.hostIf}/autoconf`, "0")].join(" && ")]);
    await run("ip", ["addr", "add", `${HOST_LINK_LOCAL}/64`, "dev", names.hostIf, "nodad"]);
    await run("ip", ["link", "set", names.hostIf, "up"]);
    await run("ip", ["route", "replace", `${addresses.v4}/32`, "dev", names.hostIf]);
    await run("ip", ["-6", "route", "replace", `${addresses.v6}/128`, "dev", names.hostIf]);

    const inNs = (...args: string[]) => run("ip", ["-n", names.netns, ...args]);
    await inNs("addr", "add", `${addresses.v4}/32`, "dev", names.sandboxIf);
    await inNs("-6", "addr", "add", `${addresses.v6}/128`, "dev", names.sandboxIf, "nodad");
    await inNs("link", "set", names.sandboxIf, "up");
    await inNs("route", "add", `${config.gatewayV4}/32`, "dev", names.sandboxIf);
    await inNs("route", "add", "default", "via", config.gatewayV4, "dev", names.sandboxIf);
    await inNs("-6", "route", "add", "default", "via", HOST_LINK_LOCAL, "dev", names.sandboxIf);
  } catch (error) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw error instanceof IsolationError ? error : new IsolationError(String(error), "command_failed");
  }
}

/**
 * Kills whatever still runs inside the namespace and in the sandbox's cgroup (then removes the
 * cgroup), then removes the veth pair, the namespace and its files. The cgroup goes before the
 * folder that says where it is, so a launcher killed in between leaves it findable.
 */
export async function destroySandboxNetwork(names: SandboxNames): Promise<void> {
  await killNetnsProcesses(names.netns);
  const cgroup = await readCgroupRecord(sandboxRunDir(names.netns));
  const failed = cgroup ? await removeSandboxCgroup(cgroup).then(() => null, (error: unknown) => error) : null;
  await run("ip", ["link", "del", names.hostIf]).catch(() => undefined);
  await run("ip", ["netns", "del", names.netns]).catch(() => undefined);
  await rm(path.join("/etc/netns", names.netns), { recursive: true, force: true });
  // A cgroup that would not go keeps its record, so the next cleanup tries again; the rest is gone.
  if (failed) throw failed;
  await rm(sandboxRunDir(names.netns), { recursive: true, force: true });
}

export async function killNetnsProcesses(netns: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const pids = await run("ip", ["netns", "pids", netns]).then(
      (r) => r.stdout.split(/\s+/).filter((p) => /^[0-9]+$/.test(p)).map(Number),
      () => [] as number[],
    );
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** This instance's namespaces and host-side interfaces as the kernel sees them (others' are ignored). */
export async function listOwnNetwork(instanceId: string): Promise<{ netns: string[]; hostIfs: string[] }> {
  const netns = (await run("ip", ["netns", "list"])).stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => isOwnNetns(instanceId, n));
  const links = JSON.parse((await run("ip", ["-j", "link", "show"])).stdout || "[]") as Array<{ ifname?: string }>;
  const prefix = hostIfPrefix(instanceId);
  const hostIfs = links.map((l) => l.ifname ?? "").filter((n) => n.startsWith(prefix) && /^[0-9]+$/.test(n.slice(prefix.length)));
  return { netns, hostIfs };
}
