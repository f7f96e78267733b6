import { execFileSync } from "node:child_process";

/**
 * What Bulkhead may leave in the machine's own network namespace: its nftables tables and the
 * sandbox gateway addresses on `lo`. Tests must never put anything there (they build namespaces
 * of their own); the suites record this before they run and check it afterwards.
 */
export interface RootNamespaceState {
  tables: string[];
  loAddresses: string[];
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return ""; // no nft, no permission: nothing of ours can be there either
  }
}

export function rootNamespaceState(): RootNamespaceState {
  const tables = run("nft", ["list", "tables"])
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^table inet bulkhead_[a-z0-9]+$/.test(l));
  const lo = JSON.parse(run("ip", ["-j", "addr", "show", "dev", "lo"]) || "[]") as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>;
  const loAddresses = (lo[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`).filter((a) => !/^(127\.|::1\/)/.test(a));
  return { tables, loAddresses };
}

/**
 * Compares with `before`: anything new was left by a test. It is removed (so the machine is clean
 * again) and the run fails, naming it.
 */
export function assertRootNamespaceUnchanged(before: RootNamespaceState, suite: string): void {
  const after = rootNamespaceState();
  const tables = after.tables.filter((t) => !before.tables.includes(t));
  const addresses = after.loAddresses.filter((a) => !before.loAddresses.includes(a));
  if (tables.length === 0 && addresses.length === 0) return;
  for (const t of tables) run("nft", ["delete", ...t.split(" ")]);
  for (const a of addresses) run("ip", ["addr", "del", a, "dev", "lo"]);
  throw new Error(
    `${suite} left Bulkhead's network state in the machine's own namespace (removed now): ${[...tables, ...addresses.map((a) => `${a} on lo`)].join(", ")}. ` +
      "A test started a worker or launcher without BULKHEAD_ISOLATION=off outside a namespace of its own.",
  );
}
