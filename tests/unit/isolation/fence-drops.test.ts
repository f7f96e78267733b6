import { describe, expect, it } from "vitest";
import { loadIsolationConfig } from "@/lib/config/isolation";
import type { ToolRunner } from "@/proxy-worker/isolation/exec";
import { readDrops } from "@/proxy-worker/isolation/fence";

const config = loadIsolationConfig("/var/lib/bulkhead", { BULKHEAD_INSTANCE_ID: "ab12" });

const listing = (elems: Array<{ concat: unknown[]; packets: number }>) =>
  JSON.stringify({ nftables: [{ metainfo: {} }, { set: { elem: elems.map((e) => ({ elem: { val: { concat: e.concat }, counter: { packets: e.packets, bytes: 0 } } })) } }] });

function tools(sets: Record<string, string | null>): ToolRunner {
  return {
    run: async (_file: string, args: readonly string[]) => {
      const out = sets[args.at(-1)!];
      if (out === null || out === undefined) throw new Error(`Error: No such file or directory; list set inet bulkhead_ab12 ${args.at(-1)}`);
      return { stdout: out, stderr: "" };
    },
  } as unknown as ToolRunner;
}

describe("reading the fence's drop counters", () => {
  it("counts a link-local flow under the IPv6 address of its interface's slot, as a flow of its own", async () => {
    const drops = await readDrops(config, tools({
      drops4: listing([{ concat: ["10.213.0.5", "192.0.2.10", "udp", 9999], packets: 2 }]),
      drops6: listing([{ concat: ["fd42:b17e:ad00::5", "fe80::1", "udp", 9995], packets: 1 }]),
      drops6ll: listing([
        { concat: ["bhab12h3", "fe80::1", "udp", 9995], packets: 4 },
        // Not a slot's interface: kept under its name, counted against no sandbox.
        { concat: ["bhab12hx", "2001:db8::10", "ipv6-icmp", 0], packets: 1 },
      ]),
    }));
    expect(drops).toEqual([
      { source: "10.213.0.5", destination: "192.0.2.10", protocol: "udp", port: 9999, packets: 2 },
      { source: "fd42:b17e:ad00::5", destination: "fe80::1", protocol: "udp", port: 9995, packets: 1 },
      { source: "fd42:b17e:ad00::5", destination: "fe80::1", protocol: "udp", port: 9995, packets: 4, linkLocal: true },
      { source: "bhab12hx", destination: "2001:db8::10", protocol: "ipv6-icmp", port: 0, packets: 1, linkLocal: true },
    ]);
  });

  it("still reads the other counters of a fence of an earlier version, which has no link-local set", async () => {
    const drops = await readDrops(config, tools({ drops4: listing([{ concat: ["10.213.0.5", "192.0.2.10", "udp", 9999], packets: 2 }]), drops6: listing([]), drops6ll: null }));
    expect(drops).toHaveLength(1);
    await expect(readDrops(config, tools({ drops4: null, drops6: listing([]), drops6ll: listing([]) }))).rejects.toThrow(/drops4/);
  });
});
