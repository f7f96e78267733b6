import type { ChildProcess } from "node:child_process";
import net from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { viaProxy } from "../../support/proxy-client";
import { connectTunnel } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";
import { prepareWorkerEnvironment, startWorkerProcess, stopWorkerProcess, type WorkerEnvironment } from "../../support/worker-process";

/**
 * One request must never take the worker down. The real worker process (`bulkhead worker`)
 * receives requests that used to throw outside any handler, and connections that are reset at
 * every point of the raw CONNECT, upgrade and TLS paths; it must answer each with a refusal (or
 * just close), and still serve afterwards.
 */
describe("one request never takes the worker down", () => {
  let up: Upstream;
  let w: WorkerEnvironment;
  let worker: ChildProcess;

  const alive = async () => {
    expect(worker.exitCode, "the worker exited").toBeNull();
    expect(worker.signalCode, "the worker was killed").toBeNull();
    const r = await viaProxy(w.proxyPort, `http://127.0.0.1:${up.port}/items`, { token: w.token });
    expect(r.status).toBe(200);
  };
  /** Writes raw bytes, then resets the connection (RST) after `afterMs`. */
  const resetAfter = async (port: number, bytes: string | Buffer, afterMs: number) => {
    const socket = net.connect(port, "127.0.0.1");
    const connected = await new Promise<boolean>((resolve) => {
      socket.once("connect", () => resolve(true));
      socket.once("error", () => resolve(false));
    });
    socket.on("error", () => undefined);
    if (!connected) return;
    socket.write(bytes);
    await new Promise((r) => setTimeout(r, afterMs));
    socket.resetAndDestroy();
  };

  beforeAll(async () => {
    up = await startHttpUpstream();
    w = await prepareWorkerEnvironment(up.port);
    worker = await startWorkerProcess(w);
  }, 120_000);
  // Each case starts from a live worker, so one crash does not hide what the others would do.
  beforeEach(async () => {
    if (worker.exitCode !== null || worker.signalCode !== null) worker = await startWorkerProcess(w);
  }, 120_000);
  afterAll(async () => {
    await stopWorkerProcess(worker);
    await w.close();
    await up.close();
  });

  it.each(["127.1:443", "2130706433:443", "0x7f.1:443", "127.0.0.1.:443", "[::1]:443", "foo_bar.example:443", "xn--nxasmq6b.example:443"])(
    "answers CONNECT %s with a refusal or a tunnel, and keeps serving",
    async (target) => {
      const tunnel = await connectTunnel(w.proxyPort, target, { "proxy-authorization": `Bearer ${w.token}` });
      expect([200, 400, 403, 502]).toContain(tunnel.status);
      tunnel.socket.destroy();
      await alive();
    },
  );

  it("survives clients that reset the connection at every step of CONNECT, upgrade and TLS", async () => {
    const auth = `Proxy-Authorization: Bearer ${w.token}\r\n`;
    const vectors: Array<[number, string | Buffer]> = [
      [w.proxyPort, `CONNECT user@local.test:443 HTTP/1.1\r\nHost: x\r\n\r\n`],
      [w.proxyPort, `CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`],
      [w.proxyPort, `CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: x\r\n${auth}\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03`],
      [w.proxyPort, `GET http://127.0.0.1:${up.port}/ws HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n${auth}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`],
      [w.proxyPort, `POST http://127.0.0.1:${up.port}/items HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n${auth}Content-Length: 100\r\n\r\n{"a":`],
      [w.proxyPort, "GARBAGE\r\n\r\n"],
      [w.transparentTlsPort, Buffer.from("16030100a5010000a10303", "hex")],
      [w.transparentTlsPort, "not tls at all\r\n\r\n"],
    ];
    for (const [port, bytes] of vectors) {
      for (const afterMs of [0, 5, 50]) await resetAfter(port, bytes, afterMs);
      await new Promise((r) => setTimeout(r, 20));
      expect(worker.exitCode, `worker exited after ${JSON.stringify(String(bytes).slice(0, 40))}`).toBeNull();
    }
    await alive();
  });
});
