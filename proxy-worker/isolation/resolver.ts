/**
 * The sandbox resolver (UDP and TCP, on the gateway addresses; the fence sends every sandbox DNS
 * packet here whatever resolver it was addressed to). It answers A and AAAA only; refuses other
 * types; answers NXDOMAIN, without any upstream lookup, for names the sandbox's task can never
 * reach; answers reachable names from Bulkhead's own destination check (the resolution the proxy
 * dials), and remembers what it told each sandbox for the name/address agreement check. A name
 * only a person's approval could reach is answered with the gateway's address, also without any
 * upstream lookup: its request is judged (and held) by the name it presents there. Each source
 * address has a rate (`admit`): past it, queries get no answer.
 */
import dgram from "node:dgram";
import net from "node:net";
import dnsPacket from "dns-packet";
import type { Logger } from "@/lib/log";
import type { CanonicalRequest } from "@/lib/semantics/types";
import type { EnforcementState } from "../proxy/enforcement-state";
import type { DestinationChecker } from "../proxy/pipeline";
import type { ResolverMemory } from "./answers";
import type { SandboxActivity } from "./activity";
import type { ConnectionOwner, TaskConnectionRegistry } from "./connections";
import { reachableName } from "./reachability";

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type Rcode = keyof typeof RCODE;

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

export interface ResolverDeps {
  state: () => EnforcementState | null;
  destinations: DestinationChecker;
  memory: ResolverMemory;
  activity: SandboxActivity;
  ttlSeconds: number;
  /**
   * The gateway addresses (IPv4, IPv6): the answer for a name only a person's approval could
   * reach. Every TCP connection reaches the sandbox listener whatever its address, which judges
   * it by the name it presents; a connection that presents none is refused (it is Bulkhead's).
   */
  gateways: { v4: string; v6: string };
  /** Per source address: queries a second, sustained; a burst may reach twice this. */
  queriesPerSecond: number;
  log: Logger;
  /** The clock (ms) the rate limit reads; tests give their own. */
  now?: () => number;
  /**
   * TCP connections (DNS over TCP) count toward the sandbox's connection cap, with its listener
   * connections, and close with its task. Without them a sandbox could hold any number of idle
   * connections to the resolver, each a file descriptor of the worker.
   */
  connections?: {
    registry: TaskConnectionRegistry;
    /** The most connections one sandbox holds open to the worker (BULKHEAD_TASK_MAX_CONNECTIONS). */
    perTask: number;
    /** The most connections each resolver socket holds, whoever opened them (BULKHEAD_MAX_CONNECTIONS). */
    listener: number;
    /** A connection over the sandbox's cap: closed and audited. */
    refuse: (socket: net.Socket, owner: ConnectionOwner, source: string, open: number) => void;
  };
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Source addresses whose buckets are remembered at most; past it, full and idle ones are forgotten. */
const MAX_BUCKETS = 4096;

interface Answered {
  rcode: Rcode;
  answers: dnsPacket.Answer[];
}

export class SandboxResolver {
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly deps: ResolverDeps) {}

  /**
   * Whether a query from `source` is answered: a token bucket per source address (refilled at
   * `queriesPerSecond`, holding twice that). A sandbox flooding the resolver takes the worker's
   * time from every other sandbox and from the proxy itself (each answerable name is a
   * destination check); past its rate its queries get no answer at all, before they are even
   * decoded, and are counted in its `sandbox.dns` audit (`limited`).
   */
  admit(source: string): boolean {
    const now = (this.deps.now ?? Date.now)();
    const rate = this.deps.queriesPerSecond;
    let bucket = this.buckets.get(source);
    if (!bucket) {
      if (this.buckets.size >= MAX_BUCKETS) this.forgetIdle(now);
      bucket = { tokens: rate * 2, at: now };
      this.buckets.set(source, bucket);
    } else {
      bucket.tokens = Math.min(rate * 2, bucket.tokens + ((now - bucket.at) / 1000) * rate);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return true;
    }
    const address = source.replace(/^::ffff:/, "");
    this.deps.activity.dns(this.deps.state()?.snapshot.sandboxBindings.get(address) ?? null, address, "limited", "");
    return false;
  }

  /** Drops the buckets that would be full again by now (their sources idle long enough). */
  private forgetIdle(now: number): void {
    const rate = this.deps.queriesPerSecond;
    for (const [source, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * rate >= rate * 2) this.buckets.delete(source);
    // Still full of busy sources (more than any machine has sandboxes): start again rather than grow.
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.clear();
  }

  async listen(addresses: readonly string[], port: number): Promise<void> {
    for (const address of addresses) {
      const socket = dgram.createSocket({ type: address.includes(":") ? "udp6" : "udp4" });
      socket.on("message", (msg, rinfo) => {
        if (!this.admit(rinfo.address)) return;
        void this.answer(msg, rinfo.address).then((reply) => {
          if (reply) socket.send(truncateForUdp(reply), rinfo.port, rinfo.address);
        });
      });
      socket.on("error", (error) => this.deps.log.warn({ err: error.message }, "sandbox resolver socket error"));
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(port, address, () => {
          socket.off("error", reject);
          resolve();
        });
      });
      this.udp.push(socket);
      const server = net.createServer({ noDelay: true }, (conn) => this.onTcp(conn));
      if (this.deps.connections) server.maxConnections = this.deps.connections.listener;
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, address, () => resolve());
      });
      this.tcp.push(server);
    }
  }

  private onTcp(conn: net.Socket): void {
    conn.on("error", () => conn.destroy());
    const caps = this.deps.connections;
    if (caps) {
      // Only sandboxes are answered (UDP from anyone else gets REFUSED): a connection from an
      // address no sandbox owns is closed at once rather than held for its idle timeout.
      const source = (conn.remoteAddress ?? "").replace(/^::ffff:/, "");
      const binding = this.deps.state()?.snapshot.sandboxBindings.get(source);
      if (!binding) return void conn.destroy();
      const open = caps.registry.countFor(binding.sandboxId);
      if (open >= caps.perTask) return caps.refuse(conn, binding, source, open);
      caps.registry.add(binding, conn);
    }
    // What has arrived, kept as chunks and joined only once a whole message is there: joined on
    // every chunk, a query sent a byte at a time cost time quadratic in its length.
    let chunks: Buffer[] = [];
    let total = 0;
    conn.setTimeout(10_000, () => conn.destroy());
    conn.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (total > 70_000) return conn.destroy();
      if (total < 2) return;
      if (chunks[0]!.length < 2) chunks = [Buffer.concat(chunks, total)];
      if (total < 2 + chunks[0]!.readUInt16BE(0)) return;
      let buffer = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
      chunks = [];
      total = 0;
      while (buffer.length >= 2 && buffer.length >= 2 + buffer.readUInt16BE(0)) {
        const msg = buffer.subarray(2, 2 + buffer.readUInt16BE(0));
        buffer = buffer.subarray(2 + msg.length);
        if (!this.admit(conn.remoteAddress ?? "")) continue;
        void this.answer(msg, conn.remoteAddress ?? "").then((reply) => {
          if (!reply || conn.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          conn.write(Buffer.concat([len, reply]));
        });
      }
      if (buffer.length > 0) {
        chunks = [buffer];
        total = buffer.length;
      }
    });
  }

  /** One query from `source`; null when the packet is not a query at all (no reply). */
  async answer(msg: Buffer, source: string): Promise<Buffer | null> {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return null;
    }
    if (query.type !== "query") return null;
    const question = query.questions?.[0];
    const result = await this.resolve(query, source.replace(/^::ffff:/, ""));
    return dnsPacket.encode({
      type: "response",
      id: query.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | RCODE[result.rcode],
      questions: question ? [question] : [],
      answers: result.answers,
    });
  }

  private async resolve(query: dnsPacket.Packet, source: string): Promise<Answered> {
    const questions = query.questions ?? [];
    const state = this.deps.state();
    const binding = state?.snapshot.sandboxBindings.get(source);
    if (!state || !binding) {
      this.deps.activity.dns(null, source, "refused", questions[0]?.name ?? "");
      return { rcode: "REFUSED", answers: [] };
    }
    const question = questions[0];
    if (questions.length !== 1 || !question || ((query.flags ?? 0) >> 11) & 0xf) return this.outcome(binding, source, "FORMERR", question?.name ?? "");
    const name = question.name.toLowerCase().replace(/\.$/, "");
    if (question.type !== "A" && question.type !== "AAAA") return this.outcome(binding, source, "REFUSED", name, question.type);
    if (!validName(name)) return this.outcome(binding, source, "NXDOMAIN", name, question.type);
    const task = state.snapshot.tasks.get(binding.taskId);
    const compiled = task && task.expiresAt.getTime() > Date.now() ? state.policyFor(task) : null;
    if (!compiled || "error" in compiled) return this.outcome(binding, source, "REFUSED", name, question.type);
    const reach = reachableName(state.registry, compiled.policy, name);
    // Never looked up upstream: the name cannot leave through DNS.
    if (!reach) return this.outcome(binding, source, "NXDOMAIN", name, question.type);
    const family = question.type === "A" ? 4 : 6;
    if (reach.held) {
      // Not looked up before a person approves a request for it: a lookup now would carry the
      // name (the agent's data, label by label) to whoever serves it, with nothing approved.
      const { v4, v6 } = this.deps.gateways;
      this.deps.memory.remember(binding.sandboxId, name, [v4, v6], this.deps.ttlSeconds * 1000);
      this.deps.activity.dns(binding, source, "answered", name, question.type);
      return { rcode: "NOERROR", answers: [{ type: question.type, name: question.name, ttl: this.deps.ttlSeconds, class: "IN", data: family === 4 ? v4 : v6 } as dnsPacket.Answer] };
    }
    let checked: readonly string[];
    try {
      const request = { method: "GET", scheme: reach.scheme, host: name, port: reach.port, path: "/", query: "", headers: {} } as unknown as CanonicalRequest;
      checked = (await this.deps.destinations.check(request, reach.descriptor)).checked;
    } catch (error) {
      const code = (error as { code?: string }).code;
      return this.outcome(binding, source, code === "dns_failure" ? "SERVFAIL" : "NXDOMAIN", name, question.type);
    }
    const addresses = checked.filter((a) => (a.includes(":") ? 6 : 4) === family);
    this.deps.memory.remember(binding.sandboxId, name, checked, this.deps.ttlSeconds * 1000);
    this.deps.activity.dns(binding, source, "answered", name, question.type);
    return { rcode: "NOERROR", answers: addresses.map((data) => ({ type: question.type, name: question.name, ttl: this.deps.ttlSeconds, class: "IN", data }) as dnsPacket.Answer) };
  }

  private outcome(binding: { sandboxId: string; taskId: string }, source: string, rcode: Rcode, name: string, type?: string): Answered {
    this.deps.activity.dns(binding, source, rcode === "NXDOMAIN" ? "nxdomain" : "refused", name, type);
    return { rcode, answers: [] };
  }

  async close(): Promise<void> {
    for (const s of this.udp) s.close();
    await Promise.all(this.tcp.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

function validName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((label) => LABEL.test(label));
}

/** UDP answers over 512 bytes set TC so the client retries over TCP. */
function truncateForUdp(reply: Buffer): Buffer {
  if (reply.length <= 1232) return reply;
  const head = Buffer.from(reply.subarray(0, 12));
  head.writeUInt16BE(head.readUInt16BE(2) | dnsPacket.TRUNCATED_RESPONSE, 2);
  head.writeUInt16BE(0, 4);
  head.writeUInt16BE(0, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10);
  return head;
}
