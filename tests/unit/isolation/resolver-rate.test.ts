/**
 * The sandbox resolver's rate limit, on real sockets on loopback: one source past its rate gets no
 * answer (UDP and TCP), another source is still answered, the bucket refills with time, and the
 * queries left unanswered are counted for the sandbox's `sandbox.dns` audit.
 */
import dgram from "node:dgram";
import net from "node:net";
import dnsPacket from "dns-packet";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Logger } from "@/lib/log";
import type { SandboxActivity } from "@/proxy-worker/isolation/activity";
import type { ResolverMemory } from "@/proxy-worker/isolation/answers";
import { SandboxResolver } from "@/proxy-worker/isolation/resolver";
import type { DestinationChecker } from "@/proxy-worker/proxy/pipeline";

const RATE = 5;

function query(id: number): Buffer {
  return dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "A", name: `n${id}.example.com` }] });
}

describe("the sandbox resolver's rate per source address", () => {
  let resolver: SandboxResolver | null = null;
  const sockets: dgram.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    await resolver?.close();
    resolver = null;
  });

  async function start() {
    let clock = 1_000_000;
    const counted: string[] = [];
    const activity = { dns: (_b: unknown, source: string | null, outcome: string) => counted.push(`${outcome} ${source}`) } as unknown as SandboxActivity;
    const log = { warn: () => undefined } as unknown as Logger;
    resolver = new SandboxResolver({
      // No sandbox is bound in this test: every admitted query is answered REFUSED.
      state: () => null,
      destinations: {} as DestinationChecker,
      memory: {} as ResolverMemory,
      gateways: { v4: "10.213.0.1", v6: "fd42:b17e:ad00::1" },
      activity,
      ttlSeconds: 30,
      queriesPerSecond: RATE,
      log,
      now: () => clock,
    });
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await resolver.listen(["127.0.0.1"], port);
    return { port, counted, advance: (ms: number) => (clock += ms) };
  }

  /** Sends `n` queries from `from` and counts the answers that came within 400 ms. */
  async function udpBurst(port: number, from: string, n: number): Promise<number> {
    const socket = dgram.createSocket("udp4");
    sockets.push(socket);
    await new Promise<void>((r) => socket.bind(0, from, () => r()));
    let answers = 0;
    socket.on("message", (msg) => {
      if (dnsPacket.decode(msg).type === "response") answers++;
    });
    for (let i = 0; i < n; i++) socket.send(query(i + 1), port, "127.0.0.1");
    await new Promise((r) => setTimeout(r, 400));
    return answers;
  }

  it("answers a burst of twice the rate, then nothing until the bucket refills; another address is still answered", async () => {
    const { port, counted, advance } = await start();
    expect(await udpBurst(port, "127.0.0.1", 3 * RATE)).toBe(2 * RATE);
    expect(counted.filter((c) => c === "limited 127.0.0.1")).toHaveLength(RATE);
    expect(await udpBurst(port, "127.0.0.2", 2)).toBe(2);
    advance(1000);
    expect(await udpBurst(port, "127.0.0.1", 2 * RATE)).toBe(RATE);
  });

  it("counts queries over TCP the same way", async () => {
    const { port } = await start();
    const conn = net.connect(port, "127.0.0.1");
    await new Promise<void>((r) => conn.once("connect", () => r()));
    let data = Buffer.alloc(0);
    conn.on("data", (c: Buffer) => (data = Buffer.concat([data, c])));
    const frames = Array.from({ length: 3 * RATE }, (_, i) => {
      const q = query(i + 1);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      return Buffer.concat([len, q]);
    });
    conn.write(Buffer.concat(frames));
    await new Promise((r) => setTimeout(r, 400));
    let answers = 0;
    for (let at = 0; at + 2 <= data.length; at += 2 + data.readUInt16BE(at)) answers++;
    expect(answers).toBe(2 * RATE);
    conn.destroy();
  });

  // Joined on every chunk, a query sent a byte at a time cost time quadratic in its length.
  it("answers a query sent a byte at a time, copying its bytes a bounded number of times", async () => {
    const { port } = await start();
    const conn = net.connect(port, "127.0.0.1");
    conn.setNoDelay(true);
    await new Promise<void>((r) => conn.once("connect", () => r()));
    let data = Buffer.alloc(0);
    conn.on("data", (c: Buffer) => (data = Buffer.concat([data, c])));
    const q = query(77);
    const frame = Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
    const concat = vi.spyOn(Buffer, "concat");
    try {
      for (const byte of frame) {
        conn.write(Buffer.from([byte]));
        await new Promise((r) => setTimeout(r, 2));
      }
      await new Promise((r) => setTimeout(r, 200));
      // The resolver's own joins (this test's `data` joins are the answer's few chunks).
      const copied = concat.mock.calls.reduce((n, [list]) => n + (list as Buffer[]).reduce((m, b) => m + b.length, 0), 0);
      expect(copied).toBeLessThan(frame.length * 4);
    } finally {
      concat.mockRestore();
    }
    expect(data.length).toBeGreaterThan(2);
    conn.destroy();
  });
});

describe("the sandbox resolver's audit of refused and unknown names", () => {
  // An interval with only NXDOMAIN or REFUSED answers was audited with `source: null`.
  it("counts every outcome under the querying address", async () => {
    const counted: string[] = [];
    const activity = { dns: (_b: unknown, source: string | null, outcome: string) => counted.push(`${outcome} ${source}`) } as unknown as SandboxActivity;
    // Bound, but its task is not in the snapshot: every A query is refused.
    const bound = { snapshot: { sandboxBindings: new Map([["10.213.0.2", { sandboxId: "sandbox-1", taskId: "task-1" }]]), tasks: new Map() } };
    const resolver = new SandboxResolver({
      state: () => bound as never,
      destinations: {} as DestinationChecker,
      memory: {} as ResolverMemory,
      gateways: { v4: "10.213.0.1", v6: "fd42:b17e:ad00::1" },
      activity,
      ttlSeconds: 30,
      queriesPerSecond: 100,
      log: { warn: () => undefined } as unknown as Logger,
    });
    const ask = (type: "A" | "TXT", name: string) => resolver.answer(dnsPacket.encode({ type: "query", id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }), "10.213.0.2");
    await ask("TXT", "a.example.com");
    await ask("A", "b.example.com");
    expect(counted).toEqual(["refused 10.213.0.2", "refused 10.213.0.2"]);
    await resolver.close();
  });
});
