import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrismaClient } from "@/lib/db/client";
import { loadWorkerConfig } from "@/lib/config/worker";
import { createLogger } from "@/lib/log";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { startEnforcementCore } from "@/proxy-worker/core";
import { startProxyService, type ProxyService } from "@/proxy-worker/proxy/service";
import type { AddressInfo } from "node:net";
import { viaProxy } from "../../support/proxy-client";
import { identity, loopbackLookup, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/** Two workers on one database: a policy change and a revocation reach both within a second. */
describe("policy changes and revocations reach every running worker", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let second: { proxy: ProxyService; port: number; close: () => Promise<void> };

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    const db = createPrismaClient(h.t.workerUrl, 4);
    const log = createLogger("second-worker", "silent");
    const core = await startEnforcementCore({ db, databaseUrl: h.t.workerUrl, log, identity, reconcileIntervalMs: 60_000 });
    const config = { ...loadWorkerConfig({}), proxyPort: 0, transparentHttpPort: 0, transparentTlsPort: 0 };
    const proxy = await startProxyService({
      config,
      db,
      databaseUrl: h.t.workerUrl,
      masterKey: h.masterKey,
      core,
      audit: { record: async () => undefined },
      log,
      lookup: loopbackLookup,
    });
    second = {
      proxy,
      port: (proxy.explicit.address() as AddressInfo).port,
      close: async () => {
        await proxy.close();
        await core.close();
        await db.$disconnect();
      },
    };
  });
  afterAll(async () => {
    await second.close();
    await h.close();
    await up.close();
  });

  /** Polls a worker until the request gets `status`; returns the milliseconds it took. */
  const until = async (port: number, token: string, method: string, status: number) => {
    const start = performance.now();
    for (;;) {
      const r = await viaProxy(port, `http://api.test:${up.port}/items`, { token, method, body: method === "GET" ? undefined : "{}", headers: method === "GET" ? {} : { "content-type": "application/json" } });
      if (r.status === status) return performance.now() - start;
      if (performance.now() - start > 3000) throw new Error(`worker on ${port} still answers ${r.status}`);
      await new Promise((r2) => setTimeout(r2, 5));
    }
  };

  it("a policy change (write now allowed) is enforced by both workers within a second", async () => {
    const { token, taskId } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n");
    await until(h.proxyPort, token, "GET", 200);
    await until(second.port, token, "GET", 200);
    expect((await viaProxy(second.port, `http://api.test:${up.port}/items`, { token, method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status).toBe(403);
    const committed = performance.now();
    await updateTaskPolicy(h.t.db, h.admin, taskId, "unlisted: deny\nrules:\n  - service: api\n    effects: [read, write]\n");
    await Promise.all([until(h.proxyPort, token, "POST", 200), until(second.port, token, "POST", 200)]);
    expect(performance.now() - committed).toBeLessThan(1000);
  });

  it("suspending the agent stops its token on both workers within a second", async () => {
    const { token, agentId } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n");
    await until(second.port, token, "GET", 200);
    const committed = performance.now();
    await h.t.db.agent.update({ where: { id: agentId }, data: { status: "suspended" } });
    await Promise.all([until(h.proxyPort, token, "GET", 407), until(second.port, token, "GET", 407)]);
    expect(performance.now() - committed).toBeLessThan(1000);
  });
});
