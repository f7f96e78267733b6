/**
 * What Bulkhead calls the things it creates for sandboxes. Every name carries a Bulkhead prefix
 * and the instance id, so cleanup after a crash finds exactly this instance's leftovers and
 * never another instance's (or anyone else's). Interface names stay within Linux's 15 characters:
 * `bh` + instance (<= 4) + `h`/`s` + slot (<= 6 digits).
 */
export interface SandboxNames {
  /** Network namespace (a file under /run/netns; no length limit). */
  netns: string;
  /** Host-side end of the veth pair (the fence matches `hostPrefix*`). */
  hostIf: string;
  /** Sandbox-side end, inside the namespace. */
  sandboxIf: string;
}

export const fenceTable = (instanceId: string) => `bulkhead_${instanceId}`;
export const hostIfPrefix = (instanceId: string) => `bh${instanceId}h`;
export const netnsPrefix = (instanceId: string) => `bh-${instanceId}-`;

export function sandboxNames(instanceId: string, slot: number, tag: string): SandboxNames {
  return {
    netns: `${netnsPrefix(instanceId)}${slot}-${tag}`,
    hostIf: `${hostIfPrefix(instanceId)}${slot}`,
    sandboxIf: `bh${instanceId}s${slot}`,
  };
}

/** The slot a host-side interface or namespace of this instance belongs to, or null when not ours. */
export function slotOfInterface(instanceId: string, name: string): number | null {
  const prefix = hostIfPrefix(instanceId);
  if (!name.startsWith(prefix)) return null;
  const rest = name.slice(prefix.length);
  return /^[0-9]{1,6}$/.test(rest) ? Number(rest) : null;
}

export function isOwnNetns(instanceId: string, name: string): boolean {
  return name.startsWith(netnsPrefix(instanceId)) && /^[0-9]{1,6}-[a-z0-9]{1,16}$/.test(name.slice(netnsPrefix(instanceId).length));
}

/**
 * The cgroup of a sandbox (cgroup.ts): `bulkhead-<instance>-<slot>-<tag>`, after its namespace
 * `bh-<instance>-<slot>-<tag>`, so a cleanup finds exactly this instance's and knows whose it is.
 */
export const cgroupPrefix = (instanceId: string) => `bulkhead-${instanceId}-`;
export const cgroupNameOf = (instanceId: string, netns: string) => `${cgroupPrefix(instanceId)}${netns.slice(netnsPrefix(instanceId).length)}`;

/** The namespace a cgroup of this instance belongs to, or null when the name is not one of ours. */
export function netnsOfCgroup(instanceId: string, name: string): string | null {
  if (!name.startsWith(cgroupPrefix(instanceId))) return null;
  const netns = `${netnsPrefix(instanceId)}${name.slice(cgroupPrefix(instanceId).length)}`;
  return isOwnNetns(instanceId, netns) ? netns : null;
}
