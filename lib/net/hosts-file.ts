/**
 * The hosts file, read by Bulkhead itself. Destinations are looked up in DNS as absolute names
 * (`name.`) so that resolver search domains never turn the name that was judged into another
 * one; glibc's `files` source does not match absolute names, so without this an operator's
 * /etc/hosts entries (Kubernetes hostAliases, split-horizon pins) would silently stop working.
 * Consulted before DNS, as the default nsswitch order (`files dns`) does. Pure parsing plus a
 * small cache that re-reads the file when it changes.
 */
import { promises as fs } from "node:fs";
import { isIP } from "node:net";

export interface HostsEntry {
  address: string;
  family: 4 | 6;
}

/** Parses hosts-file text: `address name [alias...]`, `#` comments; invalid lines are skipped. */
export function parseHostsFile(text: string): Map<string, HostsEntry[]> {
  const names = new Map<string, HostsEntry[]>();
  for (const rawLine of text.split("\n")) {
    const line = rawLine.replace(/#.*/, "").trim();
    if (line === "") continue;
    const [address, ...aliases] = line.split(/\s+/);
    const family = isIP(address ?? "");
    if (family === 0) continue;
    for (const alias of aliases) {
      const name = alias.toLowerCase().replace(/\.$/, "");
      if (name === "") continue;
      const list = names.get(name) ?? [];
      if (!list.some((e) => e.address === address)) list.push({ address: address!, family: family as 4 | 6 });
      names.set(name, list);
    }
  }
  return names;
}

/** A hosts file kept current: re-checked at most once per `recheckMs`, re-read when it changed. */
export class HostsFile {
  private names = new Map<string, HostsEntry[]>();
  private checkedAt = -Infinity;
  private stamp = "";
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly path = "/etc/hosts",
    private readonly recheckMs = 2000,
  ) {}

  /** The file's addresses for `name` (lower case, no trailing dot), or null when it does not name it. */
  async lookup(name: string): Promise<HostsEntry[] | null> {
    if (Date.now() - this.checkedAt >= this.recheckMs) await this.refresh();
    return this.names.get(name) ?? null;
  }

  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const stat = await fs.stat(this.path);
        const stamp = `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
        if (stamp !== this.stamp) {
          this.names = parseHostsFile(await fs.readFile(this.path, "utf8"));
          this.stamp = stamp;
        }
      } catch {
        // No hosts file (or unreadable): names come from DNS alone.
        this.names = new Map();
        this.stamp = "";
      } finally {
        this.checkedAt = Date.now();
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }
}
