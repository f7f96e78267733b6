import { fork } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superviseWorker, type WorkerSupervisor } from "@/cli/runtime/supervise";
import { waitFor } from "../../support/log-capture";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";
import { prepareWorkerEnvironment, type WorkerEnvironment } from "../../support/worker-process";

/**
 * The launcher restarts a crashed worker with backoff instead of stopping the whole stack, and
 * says so: in its log, in the new worker's /readyz and in its metrics. Runs the launcher's
 * supervisor around the real `bulkhead worker` and kills the worker as a crash would.
 */
describe("the launcher restarts a crashed worker", () => {
  let up: Upstream;
  let w: WorkerEnvironment;
  let supervisor: WorkerSupervisor;
  const said: string[] = [];
  let gaveUp: string | null = null;

  beforeAll(async () => {
    up = await startHttpUpstream();
    w = await prepareWorkerEnvironment(up.port);
    supervisor = superviseWorker({
      spawn: (env) => fork(path.resolve("bin/bulkhead.mjs"), ["worker"], { env: { ...w.env, ...env }, stdio: ["ignore", "ignore", "inherit", "ipc"] }),
      say: (line) => said.push(line),
      onGiveUp: (reason) => {
        gaveUp = reason;
      },
      backoff: { initialMs: 200, maxMs: 2000, stableAfterMs: 60_000 },
    });
    await supervisor.ready();
  }, 120_000);
  afterAll(async () => {
    await supervisor.stop();
    await w.close();
    await up.close();
  });

  it("brings a killed worker back, reports the restart in health, metrics and the log, and serves again", async () => {
    expect((await viaProxy(w.proxyPort, `http://127.0.0.1:${up.port}/items`, { token: w.token })).status).toBe(200);
    const first = supervisor.child()!;
    first.kill("SIGKILL");
    const ready = await waitFor(async () => {
      const r = await w.readyz();
      const restarts = r.body?.restarts as { count?: number } | undefined;
      return r.status === 200 && restarts?.count === 1 ? r.body : null;
    }, 90_000, "the restarted worker");
    expect(ready.restarts).toMatchObject({ count: 1, lastExit: "SIGKILL" });
    expect(supervisor.child()?.pid).not.toBe(first.pid);
    const metrics = await (await fetch(`http://127.0.0.1:${w.healthPort}/metrics`)).text();
    expect(metrics).toMatch(/^bulkhead_worker_restarts 1$/m);
    expect(said.some((line) => /proxy worker exited unexpectedly \(SIGKILL\); restarting in \d+ ms \(restart 1\)/.test(line))).toBe(true);
    expect(gaveUp).toBeNull();
    expect((await viaProxy(w.proxyPort, `http://127.0.0.1:${up.port}/items`, { token: w.token })).status).toBe(200);
  }, 150_000);
});
