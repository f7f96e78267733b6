/**
 * The memory and process limits of a sandbox: a cgroup of its own, made by the launcher (root)
 * under the launcher's own cgroup (on cgroup v2 where that holds processes, under its nearest
 * ancestor that hands memory and pids to its children), never elsewhere, named after the sandbox's namespace
 * (`bulkhead-<instance>-<slot>-<tag>`, names.ts). Every process of the sandbox is in it from its
 * first instruction: the process the launcher spawns writes itself into the cgroup and only then
 * executes `ip netns exec …` (session.ts), so nothing the agent starts was ever outside it. The
 * sandbox's tmpfs pages are charged to it too, so the memory limit bounds its files as well.
 *
 * cgroup v2 is preferred when its memory and pids controllers are there; otherwise the v1 memory
 * and pids hierarchies. Where neither can be used the launch is refused, unless the operator turned
 * the limits off by name. The cgroup's files stay root's: the sandbox user can neither move a
 * process out nor raise a limit. It is removed with its sandbox (teardown kills what is left in it
 * first), and a dead launcher's is removed with its namespace by the next cleanup of the instance.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { formatBytes } from "@/lib/sandboxes/limits";
import { IsolationError } from "./exec";
import { cgroupPrefix } from "./names";

/** Where a sandbox's cgroups are made: under the launcher's own cgroup, per hierarchy. */
export type CgroupLayout = { version: 2; parent: string } | { version: 1; memoryParent: string; pidsParent: string };

/** One sandbox's cgroup: for v2 both directories are the same one. */
export interface SandboxCgroup {
  version: 1 | 2;
  memoryDir: string;
  pidsDir: string;
}

/** What detection reads; the real files unless a test gives others. */
export interface CgroupFiles {
  read(file: string): string | null;
  write(file: string, value: string): void;
  exists(dir: string): boolean;
}

const realFiles: CgroupFiles = {
  read: (file) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return null;
    }
  },
  write: (file, value) => writeFileSync(file, value),
  exists: (dir) => existsSync(dir),
};

interface Mount {
  root: string;
  point: string;
  fstype: string;
  superOptions: string[];
}

function mounts(mountinfo: string): Mount[] {
  const out: Mount[] = [];
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const f = left.split(" ");
    const [fstype, , options] = right.split(" ");
    // Mount points with spaces are escaped (\040); cgroup mount points never have any.
    if (f[3] && f[4] && fstype) out.push({ root: f[3], point: f[4], fstype, superOptions: (options ?? "").split(",") });
  }
  return out;
}

/** The directory of the process's cgroup `cgroupPath` (from /proc/self/cgroup) in mount `m`. */
function dirIn(m: Mount, cgroupPath: string): string {
  const relative = m.root !== "/" && cgroupPath.startsWith(m.root) ? cgroupPath.slice(m.root.length) : cgroupPath;
  return path.join(m.point, relative).replace(/(.)\/+$/, "$1");
}

const words = (text: string | null) => new Set((text ?? "").split(/\s+/).filter(Boolean));

/**
 * Where this process may make sandbox cgroups, or why it may not (one sentence). `self` is the
 * content of /proc/self/mountinfo and /proc/self/cgroup.
 */
export function detectCgroupLayout(self: { mountinfo: string; cgroup: string }, files: CgroupFiles = realFiles, o: { enable?: boolean } = {}): CgroupLayout | { unusable: string } {
  const all = mounts(self.mountinfo);
  const lines = self.cgroup.split("\n").filter(Boolean).map((l) => {
    const [hier, controllers, ...rest] = l.split(":");
    return { hier, controllers: (controllers ?? "").split(",").filter(Boolean), path: rest.join(":") };
  });
  const problems: string[] = [];

  const v2 = all.find((m) => m.fstype === "cgroup2");
  const v2Line = lines.find((l) => l.hier === "0" && l.controllers.length === 0);
  if (v2 && v2Line) {
    const parent = dirIn(v2, v2Line.path);
    const available = words(files.read(path.join(parent, "cgroup.controllers")));
    if (available.has("memory") && available.has("pids")) {
      const handsBoth = (dir: string) => {
        const enabled = words(files.read(path.join(dir, "cgroup.subtree_control")));
        return enabled.has("memory") && enabled.has("pids");
      };
      if (handsBoth(parent)) return { version: 2, parent };
      // cgroup v2 lets a cgroup that holds processes (the launcher is in its own) hand no
      // controller to children, unless it is the root: the usual case under systemd, where the
      // launcher runs in a session scope or a service. The nearest ancestor that already hands
      // memory and pids to its children takes the sandbox's cgroup instead (a sibling of the
      // launcher's); read only, so a cleanup looking for leftovers finds the same place.
      for (let dir = parent; dir !== v2.point && dir.startsWith(`${v2.point}/`); ) {
        dir = path.dirname(dir);
        if (handsBoth(dir)) return { version: 2, parent: dir };
      }
      // Looking for leftovers (enable: false) changes nothing.
      if (o.enable === false) return { version: 2, parent };
      try {
        files.write(path.join(parent, "cgroup.subtree_control"), "+memory +pids");
        return { version: 2, parent };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // v1 cannot have them: a controller belongs to one hierarchy at a time.
        return {
          unusable: `cgroup v2 has the memory and pids controllers, but no ancestor of the launcher's cgroup hands them to its children and they cannot be handed to a child of the launcher's cgroup ${parent} (${code ?? String(error)}${code === "EBUSY" ? ": that cgroup holds processes; run the launcher in a cgroup delegated to it and holding nothing else" : code === "EACCES" || code === "EPERM" || code === "EROFS" ? ": not permitted" : ""})`,
        };
      }
    }
    problems.push(`cgroup v2 at ${v2.point} has no memory and pids controllers for ${parent} (it offers: ${[...available].join(" ") || "none"})`);
  } else {
    problems.push("no cgroup v2 is mounted");
  }

  const v1 = (controller: string) => {
    const m = all.find((x) => x.fstype === "cgroup" && x.superOptions.includes(controller));
    const l = lines.find((x) => x.controllers.includes(controller));
    return m && l ? dirIn(m, l.path) : null;
  };
  const memoryParent = v1("memory");
  const pidsParent = v1("pids");
  if (memoryParent && pidsParent && files.exists(memoryParent) && files.exists(pidsParent)) return { version: 1, memoryParent, pidsParent };
  const missing = [memoryParent && files.exists(memoryParent) ? null : "memory", pidsParent && files.exists(pidsParent) ? null : "pids"].filter(Boolean);
  problems.push(`cgroup v1 has no ${missing.join(" and no ")} hierarchy for this process`);
  return { unusable: problems.join("; ") };
}

/**
 * The layout for this process, read from its own /proc files. `enable: false` (a cleanup looking
 * for leftovers) never turns on a v2 controller.
 */
export function ownCgroupLayout(o: { enable?: boolean } = {}): CgroupLayout | { unusable: string } {
  const mountinfo = realFiles.read("/proc/self/mountinfo") ?? "";
  const cgroup = realFiles.read("/proc/self/cgroup") ?? "";
  return detectCgroupLayout({ mountinfo, cgroup }, realFiles, o);
}

export const describeLayout = (l: CgroupLayout) => (l.version === 2 ? `cgroup v2 (${l.parent})` : `cgroup v1 (${l.memoryParent}, ${l.pidsParent})`);

/** Where the cgroup `name` lives in `layout` (nothing is made). */
export function planSandboxCgroup(layout: CgroupLayout, name: string): SandboxCgroup {
  return layout.version === 2
    ? { version: 2, memoryDir: path.join(layout.parent, name), pidsDir: path.join(layout.parent, name) }
    : { version: 1, memoryDir: path.join(layout.memoryParent, name), pidsDir: path.join(layout.pidsParent, name) };
}

/** Makes the sandbox's cgroup with its limits; undoes itself and throws when any step fails. */
export async function createSandboxCgroup(cg: SandboxCgroup, limits: { memoryBytes: number; pids: number }): Promise<void> {
  const name = path.basename(cg.memoryDir);
  const made: string[] = [];
  try {
    for (const dir of dirsOf(cg)) {
      // Mode as the kernel makes it (root's, not writable by others); a leftover of the same name is an error.
      await mkdir(dir);
      made.push(dir);
    }
    const memory = String(limits.memoryBytes);
    if (cg.version === 2) {
      await writeFile(path.join(cg.memoryDir, "memory.max"), memory);
      // No swap: the limit is what the sandbox holds, not what it can push out to disk.
      if (existsSync(path.join(cg.memoryDir, "memory.swap.max"))) await writeFile(path.join(cg.memoryDir, "memory.swap.max"), "0");
    } else {
      await writeFile(path.join(cg.memoryDir, "memory.limit_in_bytes"), memory);
      if (existsSync(path.join(cg.memoryDir, "memory.memsw.limit_in_bytes"))) await writeFile(path.join(cg.memoryDir, "memory.memsw.limit_in_bytes"), memory);
    }
    await writeFile(path.join(cg.pidsDir, "pids.max"), String(limits.pids));
  } catch (error) {
    for (const dir of made.reverse()) await rmdir(dir).catch(() => undefined);
    throw new IsolationError(`could not make the sandbox's cgroup ${name} (memory ${formatBytes(limits.memoryBytes)}, ${limits.pids} processes): ${error instanceof Error ? error.message : String(error)}`, "cgroup_failed");
  }
}

const dirsOf = (cg: SandboxCgroup) => [...new Set([cg.memoryDir, cg.pidsDir])];

/**
 * The `cgroup.procs` files a sandbox's first process writes itself into before it executes
 * anything else (session.ts).
 */
export const procsFiles = (cg: SandboxCgroup) => dirsOf(cg).map((d) => path.join(d, "cgroup.procs"));

function pidsIn(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n").filter((l) => /^[0-9]+$/.test(l)).map(Number);
  } catch {
    return [];
  }
}

/** Kills every process left in the cgroup and removes it (each hierarchy's directory). Idempotent. */
export async function removeSandboxCgroup(cg: SandboxCgroup): Promise<void> {
  const dirs = dirsOf(cg).filter((d) => existsSync(d));
  if (dirs.length === 0) return;
  for (let round = 0; round < 100; round++) {
    const pids = [...new Set(dirs.flatMap(pidsIn))];
    if (pids.length === 0) break;
    if (cg.version === 2 && existsSync(path.join(cg.pidsDir, "cgroup.kill"))) await writeFile(path.join(cg.pidsDir, "cgroup.kill"), "1").catch(() => undefined);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const dir of dirs) {
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT") break;
        // EBUSY while the last killed processes are being reaped.
        if (attempt >= 100) throw new IsolationError(`could not remove the sandbox's cgroup ${dir}: ${code ?? String(error)}`, "cgroup_failed");
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

/** The file in a sandbox's folder that says where its cgroup is (for teardown and cleanup). */
export const cgroupRecord = (runDir: string) => path.join(runDir, "cgroup.json");

export async function readCgroupRecord(runDir: string): Promise<SandboxCgroup | null> {
  try {
    const value = JSON.parse(await readFile(cgroupRecord(runDir), "utf8")) as SandboxCgroup;
    return (value.version === 1 || value.version === 2) && typeof value.memoryDir === "string" && typeof value.pidsDir === "string" ? value : null;
  } catch {
    return null;
  }
}

/** This instance's sandbox cgroups under this process's own cgroup (`bulkhead-<instance>-*`), as directories. */
export function listOwnCgroups(instanceId: string, layout: CgroupLayout): Array<{ name: string; cgroup: SandboxCgroup }> {
  const names = new Set<string>();
  const parents = layout.version === 2 ? [layout.parent] : [layout.memoryParent, layout.pidsParent];
  for (const parent of parents) {
    try {
      for (const e of readdirSync(parent, { withFileTypes: true })) if (e.isDirectory() && e.name.startsWith(cgroupPrefix(instanceId))) names.add(e.name);
    } catch {
      // a hierarchy that cannot be read has none of ours
    }
  }
  return [...names].map((name) => ({ name, cgroup: planSandboxCgroup(layout, name) }));
}

/** What the kernel counted in a sandbox's cgroup: processes its OOM killer killed, and forks refused at pids.max. */
export function cgroupEvents(cg: SandboxCgroup): { oomKills: number; pidsRefused: number } {
  const counter = (file: string, key: string) => {
    const text = realFiles.read(file) ?? "";
    const m = new RegExp(`^${key} ([0-9]+)$`, "m").exec(text);
    return m ? Number(m[1]) : 0;
  };
  return {
    oomKills: counter(path.join(cg.memoryDir, cg.version === 2 ? "memory.events" : "memory.oom_control"), "oom_kill"),
    pidsRefused: counter(path.join(cg.pidsDir, "pids.events"), "max"),
  };
}
