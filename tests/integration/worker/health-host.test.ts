import type { ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadWorkerConfig } from "@/lib/config/worker";
import { HEALTH_HEADERS_TIMEOUT_MS, HEALTH_MAX_CONNECTIONS } from "@/proxy-worker/health";
import { prepareWorkerEnvironment, startWorkerProcess, stopWorkerProcess, type WorkerEnvironment } from "../../support/worker-process";

/** One request to the worker's health port with the Host header a browser would send for `host`. */
function get(port: number, path: string, host: string | null): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: "GET", setHost: false, headers: host === null ? {} : { host } }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * DNS rebinding against the worker's health port: a page the operator has open at
 * http://rebind.attacker.example:8081 has its name re-resolved to 127.0.0.1, and the browser
 * sends the page's requests (same origin, so it may read the answers) to the real worker, with
 * `Host: rebind.attacker.example:8081`. The worker answers only requests addressed to an IP,
 * localhost or a listed name; the rest get 403 and learn nothing.
 */
describe("the worker's health port and the Host it is reached by", () => {
  let w: WorkerEnvironment;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    w = await prepareWorkerEnvironment(1, { BULKHEAD_WORKER_HEALTH_ALLOWED_HOSTS: "metrics.bulkhead.internal, worker-0.example." });
    child = await startWorkerProcess(w);
  }, 120_000);
  afterAll(async () => {
    await stopWorkerProcess(child);
    await w.close();
  });

  const paths = ["/healthz", "/readyz", "/metrics", "/sandboxes/known?address=10.0.0.1", "/sandboxes/connections?address=10.0.0.1", "/nothing"];

  it("refuses every path to a request addressed to a name that rebinds to it, saying nothing of the worker", async () => {
    const port = w.healthPort;
    for (const host of [`rebind.attacker.example:${port}`, "rebind.attacker.example", `127.0.0.1.nip.io:${port}`, `LOCALHOST.attacker.example:${port}`, `metrics.bulkhead.internal.attacker.example:${port}`, "a:b:c", "[::1", `[::1]x:${port}`, `127.0.0.1:${port}@evil.example`, ""]) {
      for (const path of paths) {
        const res = await get(port, path, host);
        expect(res.status, `${host} ${path}`).toBe(403);
        expect(JSON.parse(res.body), `${host} ${path}`).toEqual({ error: "host_not_allowed", message: expect.any(String) });
      }
    }
  });

  it("answers requests addressed to an IP address, localhost or a listed name as before", async () => {
    const port = w.healthPort;
    for (const host of [`127.0.0.1:${port}`, "127.0.0.1", `[::1]:${port}`, `localhost:${port}`, `LocalHost:${port}`, `app.localhost:${port}`, `metrics.bulkhead.internal:${port}`, `METRICS.bulkhead.internal.`, `worker-0.example:${port}`, `${os.hostname()}:${port}`]) {
      expect((await get(port, "/readyz", host)).status, String(host)).toBe(200);
      const metrics = await get(port, "/metrics", host);
      expect(metrics.status, String(host)).toBe(200);
      expect(metrics.body).toContain("bulkhead_decisions_total");
    }
  });

  it("holds at most a few dozen connections, idle ones not for long: a local flood cannot take the worker's file descriptors", async () => {
    // Anything on the machine can connect to the health port (an agent there with the explicit
    // proxy too), and its connections share the worker's file descriptors with the proxy's
    // listeners, its database connections and its audit log. 400 idle connections used to be 400
    // descriptors held for as long as the client liked.
    const pid = child!.pid!;
    const fds = () => readdirSync(`/proc/${pid}/fd`).length;
    const before = fds();
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 400; i++) {
      const s = net.connect({ host: "127.0.0.1", port: w.healthPort });
      s.on("error", () => undefined);
      sockets.push(s);
    }
    await Promise.all(sockets.map((s) => new Promise((r) => (s.connecting ? s.once("connect", r).once("close", r) : r(null)))));
    await new Promise((r) => setTimeout(r, 500));
    const during = fds() - before;
    expect(during, "descriptors the worker holds for 400 idle connections").toBeLessThanOrEqual(HEALTH_MAX_CONNECTIONS + 16);
    // Those it accepted and that never sent a request are closed after the headers timeout.
    await new Promise((r) => setTimeout(r, HEALTH_HEADERS_TIMEOUT_MS + 2_500));
    expect(sockets.filter((s) => !s.destroyed && s.readyState === "open").length).toBe(0);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect((await get(w.healthPort, "/readyz", `127.0.0.1:${w.healthPort}`)).status).toBe(200);
  }, 30_000);

  it("takes BULKHEAD_WORKER_HEALTH_HOST as an allowed name when it is one, and refuses a list entry that is not a name", () => {
    expect(loadWorkerConfig({ BULKHEAD_WORKER_HEALTH_HOST: "worker.example" }).healthAllowedHostNames).toEqual(["worker.example"]);
    expect(loadWorkerConfig({ BULKHEAD_WORKER_HEALTH_HOST: "0.0.0.0", BULKHEAD_WORKER_HEALTH_ALLOWED_HOSTS: "a.example,b.example" }).healthAllowedHostNames).toEqual(["a.example", "b.example"]);
    expect(() => loadWorkerConfig({ BULKHEAD_WORKER_HEALTH_ALLOWED_HOSTS: "a.example,http://b.example" })).toThrow(/BULKHEAD_WORKER_HEALTH_ALLOWED_HOSTS/);
  });
});
