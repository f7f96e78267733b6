import { describe, expect, it } from "vitest";
import { loadIsolationConfig } from "@/lib/config/isolation";
import { applyOverrides, DEFAULT_LIMITS, describeLimits, formatBytes, inodesFor, parseHomeSize, parseMemory, parsePids, parseScratchSize } from "@/lib/sandboxes/limits";
import { detectCgroupLayout, type CgroupFiles } from "@/proxy-worker/isolation/cgroup";
import { tmpfsSize } from "@/proxy-worker/isolation/session";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe("sandbox limits: sizes", () => {
  it.each([
    ["1GiB", GiB],
    ["1G", GiB],
    ["1g", GiB],
    ["512MiB", 512 * MiB],
    ["512 M", 512 * MiB],
    ["1.5GiB", 1.5 * GiB],
    ["2048K", 2 * MiB],
    ["2097152", 2 * MiB],
    ["1TiB", 1024 * GiB],
  ])("reads %s as %d bytes", (text, bytes) => {
    expect(parseHomeSize(text)).toBe(bytes);
  });

  it.each([
    ["0", /would mean no limit/],
    ["unlimited", /would mean no limit/],
    ["max", /would mean no limit/],
    ["-1", /would mean no limit/],
    ["-5M", /must be a size such as 512MiB/],
    ["lots", /must be a size such as 512MiB/],
    ["1GB", /write 1GiB \(sizes are binary/],
    ["10MB", /write 10MiB/],
    ["5 parsecs", /must be a size|unknown unit/],
    ["3Q", /unknown unit "Q"/],
    ["512K", /must be between 1 MiB and 1 TiB/],
    ["2TiB", /must be between 1 MiB and 1 TiB/],
    ["", /must be a size/],
  ])("refuses %j, naming the flag", (text, message) => {
    expect(() => parseScratchSize(text)).toThrow(message);
    expect(() => parseScratchSize(text)).toThrow(/--scratch-size/);
  });

  it("bounds memory between 16 MiB and 16 TiB", () => {
    expect(parseMemory("16MiB")).toBe(16 * MiB);
    expect(() => parseMemory("8MiB")).toThrow(/--memory must be between 16 MiB and 16 TiB/);
  });

  it("reads process counts and refuses nonsense and 'no limit'", () => {
    expect(parsePids("64")).toBe(64);
    expect(() => parsePids("0")).toThrow(/would mean no limit/);
    expect(() => parsePids("max")).toThrow(/would mean no limit/);
    expect(() => parsePids("1.5")).toThrow(/whole number/);
    expect(() => parsePids("8")).toThrow(/--pids must be between 16 and 4194304/);
    expect(() => parsePids("ten")).toThrow(/whole number/);
  });

  it("formats sizes and derives tmpfs options with an inode count to match", () => {
    expect(formatBytes(GiB)).toBe("1 GiB");
    expect(formatBytes(1.5 * GiB)).toBe("1.5 GiB");
    expect(formatBytes(512 * MiB)).toBe("512 MiB");
    expect(inodesFor(GiB)).toBe(262144);
    expect(tmpfsSize(4 * MiB)).toBe("size=4096k,nr_inodes=1024");
    expect(describeLimits(DEFAULT_LIMITS)).toBe("home 1 GiB, scratch 512 MiB each, memory 4 GiB, 1024 processes");
  });
});

describe("sandbox limits: configuration and flags", () => {
  it("defaults, and reads each variable", () => {
    expect(loadIsolationConfig("/d", {}).limits).toEqual(DEFAULT_LIMITS);
    const c = loadIsolationConfig("/d", { BULKHEAD_SANDBOX_HOME_SIZE: "2GiB", BULKHEAD_SANDBOX_SCRATCH_SIZE: "64M", BULKHEAD_SANDBOX_MEMORY: "1G", BULKHEAD_SANDBOX_PIDS: "256" });
    expect(c.limits).toEqual({ homeBytes: 2 * GiB, scratchBytes: 64 * MiB, memoryBytes: GiB, pids: 256 });
    expect(loadIsolationConfig("/d", { BULKHEAD_SANDBOX_RESOURCE_LIMITS: "off" }).limits).toEqual({ ...DEFAULT_LIMITS, memoryBytes: null, pids: null });
    expect(loadIsolationConfig("/d", {}).verifyTimeoutMs).toBe(120_000);
  });

  it("names a bad variable and never takes it as unlimited", () => {
    expect(() => loadIsolationConfig("/d", { BULKHEAD_SANDBOX_MEMORY: "unlimited" })).toThrow(/BULKHEAD_SANDBOX_MEMORY must be a size such as 512MiB/);
    expect(() => loadIsolationConfig("/d", { BULKHEAD_SANDBOX_HOME_SIZE: "0" })).toThrow(/BULKHEAD_SANDBOX_HOME_SIZE must be a size/);
    expect(() => loadIsolationConfig("/d", { BULKHEAD_SANDBOX_PIDS: "-1" })).toThrow(/BULKHEAD_SANDBOX_PIDS must be a whole number of processes/);
    expect(() => loadIsolationConfig("/d", { BULKHEAD_SANDBOX_RESOURCE_LIMITS: "maybe" })).toThrow(/BULKHEAD_SANDBOX_RESOURCE_LIMITS must be on or off/);
  });

  it("applies a run's flags over the configuration", () => {
    expect(applyOverrides(DEFAULT_LIMITS, { memory: "64MiB", pids: "64", homeSize: "4MiB" })).toEqual({ homeBytes: 4 * MiB, scratchBytes: DEFAULT_LIMITS.scratchBytes, memoryBytes: 64 * MiB, pids: 64 });
    expect(applyOverrides(DEFAULT_LIMITS, { noResourceLimits: true })).toEqual({ ...DEFAULT_LIMITS, memoryBytes: null, pids: null });
    expect(() => applyOverrides(DEFAULT_LIMITS, { noResourceLimits: true, memory: "1GiB" })).toThrow(/not both/);
    // Limits turned off in the environment, one given on the command line: both are on for that run.
    expect(applyOverrides({ ...DEFAULT_LIMITS, memoryBytes: null, pids: null }, { pids: "64" })).toEqual({ ...DEFAULT_LIMITS, pids: 64 });
  });
});

/** Files of a fake /sys/fs/cgroup: what detection reads, and what it writes. */
function files(content: Record<string, string>, writable = true, dirs: string[] = []): CgroupFiles & { written: Record<string, string> } {
  const written: Record<string, string> = {};
  return {
    written,
    exists: (d) => dirs.includes(d),
    read: (f) => content[f] ?? null,
    write: (f, v) => {
      if (!writable) throw Object.assign(new Error("EBUSY"), { code: "EBUSY" });
      written[f] = v;
    },
  };
}

const HYBRID_MOUNTS = [
  "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
  "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");
const HYBRID_SELF = "8:pids:/\n4:memory:/process_api/abc\n0::/\n";

describe("sandbox limits: which cgroup", () => {
  it("prefers cgroup v2 when its memory and pids controllers are there, enabling them for children", () => {
    const f = files({ "/sys/fs/cgroup/svc/cgroup.controllers": "cpu memory pids io", "/sys/fs/cgroup/svc/cgroup.subtree_control": "" });
    const layout = detectCgroupLayout({ mountinfo: "25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", cgroup: "0::/svc\n" }, f);
    expect(layout).toEqual({ version: 2, parent: "/sys/fs/cgroup/svc" });
    expect(f.written).toEqual({ "/sys/fs/cgroup/svc/cgroup.subtree_control": "+memory +pids" });
  });

  it("looking for leftovers (enable: false) never turns a v2 controller on", () => {
    const f = files({ "/sys/fs/cgroup/svc/cgroup.controllers": "memory pids", "/sys/fs/cgroup/svc/cgroup.subtree_control": "" });
    expect(detectCgroupLayout({ mountinfo: "25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", cgroup: "0::/svc\n" }, f, { enable: false })).toEqual({ version: 2, parent: "/sys/fs/cgroup/svc" });
    expect(f.written).toEqual({});
  });

  it("refuses cgroup v2 whose controllers cannot be handed to children, saying why", () => {
    const f = files({ "/sys/fs/cgroup/svc/cgroup.controllers": "memory pids", "/sys/fs/cgroup/svc/cgroup.subtree_control": "" }, false);
    const layout = detectCgroupLayout({ mountinfo: "25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", cgroup: "0::/svc\n" }, f);
    expect(layout).toMatchObject({ unusable: expect.stringMatching(/no ancestor of the launcher's cgroup hands them to its children and they cannot be handed to a child of the launcher's cgroup \/sys\/fs\/cgroup\/svc \(EBUSY: that cgroup holds processes/) });
  });

  it("under systemd (the launcher in a scope that holds processes), takes the nearest ancestor that hands both controllers to its children, and cleanup finds the same place", () => {
    const scope = "/sys/fs/cgroup/user.slice/user-0.slice/session-3.scope";
    const f = files({
      [`${scope}/cgroup.controllers`]: "cpu memory pids",
      [`${scope}/cgroup.subtree_control`]: "",
      "/sys/fs/cgroup/user.slice/user-0.slice/cgroup.subtree_control": "cpu memory pids",
      "/sys/fs/cgroup/user.slice/cgroup.subtree_control": "cpu memory pids",
      "/sys/fs/cgroup/cgroup.subtree_control": "cpu io memory pids",
    });
    const self = { mountinfo: "25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", cgroup: "0::/user.slice/user-0.slice/session-3.scope\n" };
    expect(detectCgroupLayout(self, f)).toEqual({ version: 2, parent: "/sys/fs/cgroup/user.slice/user-0.slice" });
    expect(detectCgroupLayout(self, f, { enable: false })).toEqual({ version: 2, parent: "/sys/fs/cgroup/user.slice/user-0.slice" });
    expect(f.written).toEqual({});
  });

  it("an ancestor that hands only one of the controllers is passed over; the mount's root is the last one asked", () => {
    const f = files({
      "/sys/fs/cgroup/a/b/cgroup.controllers": "memory pids",
      "/sys/fs/cgroup/a/b/cgroup.subtree_control": "",
      "/sys/fs/cgroup/a/cgroup.subtree_control": "memory",
      "/sys/fs/cgroup/cgroup.subtree_control": "memory pids",
    });
    expect(detectCgroupLayout({ mountinfo: "25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", cgroup: "0::/a/b\n" }, f)).toEqual({ version: 2, parent: "/sys/fs/cgroup" });
    // Nothing above the mount is ever taken for a cgroup: with the root handing only one, the
    // launcher's own cgroup is asked to hand both (here it can: it holds no process).
    const g = files({
      "/sys/fs/cgroup/a/b/cgroup.controllers": "memory pids",
      "/sys/fs/cgroup/a/b/cgroup.subtree_control": "",
      "/sys/fs/cgroup/cgroup.subtree_control": "memory",
      "/sys/fs/cgroup.subtree_control": "memory pids",
    });
    expect(detectCgroupLayout({ mountinfo: "25 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", cgroup: "0::/a/b\n" }, g)).toEqual({ version: 2, parent: "/sys/fs/cgroup/a/b" });
    expect(g.written).toEqual({ "/sys/fs/cgroup/a/b/cgroup.subtree_control": "+memory +pids" });
  });

  it("uses the v1 memory and pids hierarchies, under the process's own cgroups, when v2 has no controllers (this machine)", () => {
    const f = files({ "/sys/fs/cgroup/unified/cgroup.controllers": "hugetlb" }, true, ["/sys/fs/cgroup/memory/process_api/abc", "/sys/fs/cgroup/pids"]);
    const layout = detectCgroupLayout({ mountinfo: HYBRID_MOUNTS, cgroup: HYBRID_SELF }, f);
    expect(layout).toEqual({ version: 1, memoryParent: "/sys/fs/cgroup/memory/process_api/abc", pidsParent: "/sys/fs/cgroup/pids" });
  });

  it("is unusable, with the reasons, where neither has the controllers", () => {
    const f = files({ "/sys/fs/cgroup/unified/cgroup.controllers": "hugetlb" }, true, ["/sys/fs/cgroup/memory/process_api/abc"]);
    const layout = detectCgroupLayout({ mountinfo: HYBRID_MOUNTS.split("\n").filter((l) => !l.includes("pids")).join("\n"), cgroup: HYBRID_SELF }, f);
    expect(layout).toMatchObject({ unusable: expect.stringMatching(/no memory and pids controllers.*cgroup v1 has no pids hierarchy/) });
    expect(detectCgroupLayout({ mountinfo: "", cgroup: "" }, f)).toMatchObject({ unusable: expect.stringMatching(/no cgroup v2 is mounted/) });
  });
});
