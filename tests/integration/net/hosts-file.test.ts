import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/** Mount and network namespaces need root (or user namespaces); without them the scenario cannot be built. */
function namespacesAvailable(): boolean {
  try {
    execFileSync("unshare", ["--mount", "--net", "true"], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Operators point names at addresses with /etc/hosts (Kubernetes hostAliases, split-horizon
 * names); the proxy's resolver must honour it while never letting resolver search domains turn
 * the name that was judged into another one. Runs the production resolver in its own mount and
 * network namespaces, with the test's hosts file and resolv.conf and a DNS server on loopback.
 */
describe("destinations resolve through /etc/hosts, never through search domains", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "bh-hosts-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(!namespacesAvailable())("finds names in the hosts file, judges their addresses, and resolves DNS names absolutely", () => {
    writeFileSync(
      path.join(dir, "hosts"),
      [
        "127.0.0.1 localhost",
        "# a comment line",
        "10.1.2.3\talias.example.com   alias-short # hostAliases",
        "93.184.216.34 other.example www.aliased.example",
        "93.184.216.35 pinned.example.com",
        "",
      ].join("\n"),
    );
    writeFileSync(path.join(dir, "resolv.conf"), "nameserver 127.0.0.1\nsearch corp.example\noptions ndots:1 timeout:1 attempts:1\n");
    const child = path.resolve("tests/integration/net/resolver-child.ts");
    const script = [
      `mount --bind ${dir}/hosts /etc/hosts`,
      `mount --bind ${dir}/resolv.conf /etc/resolv.conf`,
      "ip link set lo up",
      `exec ${process.execPath} --import tsx ${child}`,
    ].join(" && ");
    const out = JSON.parse(execFileSync("unshare", ["--mount", "--net", "sh", "-c", script], { encoding: "utf8", timeout: 60_000 })) as Record<string, unknown>;

    expect(out.relativeLookup).toBe("10.9.9.9");
    expect(out.searchDomain).toMatchObject({ ok: false, code: "dns_failure" });
    expect(out.dns).toEqual({ ok: true, address: "93.184.216.34" });
    expect(out.hostsInternal).toEqual({ ok: true, address: "10.1.2.3" });
    expect(out.hostsForbidden).toMatchObject({ ok: false, code: "destination_forbidden" });
    expect(String((out.hostsForbidden as { reason: string }).reason)).toContain("10.1.2.3 is private");
    expect(out.hostsPublic).toEqual({ ok: true, address: "93.184.216.34" });
    expect(out.hostsFirst).toEqual({ ok: true, address: "93.184.216.35" });
  });
});
