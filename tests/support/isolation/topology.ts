/**
 * A private network for layer-3 tests, made of namespaces this test run owns:
 *   host    plays the machine Bulkhead runs on: the worker and the sandbox launcher run inside it
 *           (ip netns exec), its `lo` gets the gateway addresses, its veths the sandboxes.
 *   outside plays the internet: upstream services and canaries (servers that answer with a
 *           banner, so reaching one proves an escape), routed from host by a veth pair. The host
 *           forwards IPv4 and IPv6, so only the fence stands between a sandbox and outside.
 * The test process stays in the root namespace and touches nothing there: servers and clients in
 * the namespaces are sockets made by a helper inside them and handed over (see netns-helper.mjs).
 * The worker reaches the test's PostgreSQL through a Unix-socket relay (sockets cross namespaces).
 * close() removes every namespace, interface, file and process the run made, also after failures.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import dgram from "node:dgram";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const HELPER = fileURLToPath(new URL("./netns-helper.mjs", import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: options.env ?? ({ PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } as unknown as NodeJS.ProcessEnv), cwd: ROOT });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

async function must(file: string, args: readonly string[]): Promise<string> {
  const r = await sh(file, args);
  if (r.code !== 0) throw new Error(`${file} ${args.join(" ")} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Sockets made inside one namespace and handed to this process. */
export class NetnsHelper {
  private readonly pending = new Map<number, (m: Record<string, unknown>, handle: unknown) => void>();
  private next = 1;
  private constructor(private readonly child: ChildProcess) {
    child.on("message", (m: Record<string, unknown>, handle: unknown) => {
      const done = this.pending.get(m.id as number);
      this.pending.delete(m.id as number);
      done?.(m, handle);
    });
  }

  static async start(netns: string): Promise<NetnsHelper> {
    const child = fork(HELPER, [], { execPath: "/usr/sbin/ip", execArgv: ["netns", "exec", netns, process.execPath], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    await new Promise<void>((resolve, reject) => {
      child.once("message", () => resolve());
      child.once("exit", (code) => reject(new Error(`netns helper in ${netns} exited (${code})`)));
    });
    return new NetnsHelper(child);
  }

  private call<T>(op: Record<string, unknown>): Promise<{ m: Record<string, unknown>; handle: T }> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (m, handle) => (m.error ? reject(new Error(String(m.error))) : resolve({ m, handle: handle as T })));
      this.child.send({ id, ...op });
    });
  }

  async listenTcp(host: string, port: number): Promise<net.Server> {
    return (await this.call<net.Server>({ op: "listen-tcp", host, port })).handle;
  }

  async listenUdp(host: string, port: number): Promise<dgram.Socket> {
    return (await this.call<dgram.Socket>({ op: "listen-udp", host, port })).handle;
  }

  /** A TCP connection made from inside the namespace (its source address is the namespace's, or `localAddress`). */
  async connect(host: string, port: number, localAddress?: string): Promise<net.Socket> {
    const socket = (await this.call<net.Socket>({ op: "connect", host, port, localAddress })).handle;
    socket.resume();
    return socket;
  }

  async resolve(server: string, name: string, type: "A" | "AAAA" = "A"): Promise<string[]> {
    return (await this.call<never>({ op: "resolve", server, name, type })).m.addresses as string[];
  }

  /** Sends one datagram (from `localAddress` when given) and resolves with the reply, or null. */
  async udpExchange(host: string, port: number, payload: string, timeoutMs = 1000, localAddress?: string): Promise<string | null> {
    return (await this.call<never>({ op: "udp-exchange", host, port, payload, timeoutMs, localAddress })).m.reply as string | null;
  }

  close(): void {
    this.child.kill("SIGKILL");
  }
}

/** An HTTP(S) server whose listening socket lives in a namespace; records every request. */
export interface ServedHit {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export async function serveHttp(
  helper: NetnsHelper,
  host: string,
  port: number,
  options: { tls?: { cert: string; key: string }; respond?: (hit: ServedHit, res: http.ServerResponse) => void } = {},
): Promise<{ hits: ServedHit[]; close(): Promise<void> }> {
  const hits: ServedHit[] = [];
  const respond =
    options.respond ??
    ((hit: ServedHit, res: http.ServerResponse) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: true, method: hit.method, url: hit.url, sawAuthorization: hit.headers.authorization ?? null }));
    });
  const onRequest: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const hit = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      hits.push(hit);
      respond(hit, res);
    });
  };
  const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, onRequest) : http.createServer(onRequest);
  const handle = await helper.listenTcp(host, port);
  await new Promise<void>((r) => server.listen(handle, () => r()));
  return {
    hits,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A canary: any TCP connection gets the banner; any UDP datagram gets it back. */
export async function serveCanary(helper: NetnsHelper, host: string, tcpPorts: readonly number[], udpPort: number): Promise<{ tcpHits: number; udpHits: number; close(): void }> {
  const state = { tcpHits: 0, udpHits: 0, closers: [] as Array<() => void> };
  for (const port of tcpPorts) {
    const server = net.createServer((socket) => {
      state.tcpHits++;
      socket.on("error", () => socket.destroy());
      socket.end("BULKHEAD-CANARY\n");
    });
    const handle = await helper.listenTcp(host, port);
    server.listen(handle);
    state.closers.push(() => server.close());
  }
  const udp = await helper.listenUdp(host, udpPort);
  udp.on("message", (_msg, rinfo) => {
    state.udpHits++;
    udp.send("BULKHEAD-CANARY", rinfo.port, rinfo.address);
  });
  state.closers.push(() => udp.close());
  return {
    get tcpHits() {
      return state.tcpHits;
    },
    get udpHits() {
      return state.udpHits;
    },
    close: () => state.closers.forEach((c) => c()),
  };
}

/** A DNS "resolver" outside that answers every A query with the marker 198.51.100.77. */
export async function serveCanaryResolver(helper: NetnsHelper, host: string): Promise<{ queries: number; close(): void }> {
  const state = { queries: 0 };
  const udp = await helper.listenUdp(host, 53);
  udp.on("message", (msg, rinfo) => {
    state.queries++;
    const id = msg.subarray(0, 2);
    const question = msg.subarray(12);
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 77]);
    const header = Buffer.from([id[0] ?? 0, id[1] ?? 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    udp.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
  });
  return {
    get queries() {
      return state.queries;
    },
    close: () => udp.close(),
  };
}

export interface TopologyOptions {
  /** Name -> address entries for the host namespace's hosts file (both `name` and `name.`). */
  hosts: Record<string, string>;
  /** Extra addresses on the outside namespace's `lo` (upstreams, canaries). */
  outsideAddresses: string[];
  /** The test database's URLs per role (one server): relayed into the namespaces. */
  database: { ownerUrl: string; url: string; workerUrl: string };
}

/**
 * The letter that names this run's namespaces (`bh<letter>-<run>-host`) and its Bulkhead instance
 * (`<letter><run>`): `t` unless BULKHEAD_TEST_NETNS_LETTER names another, so that test runs from
 * several checkouts on one machine cannot even by chance take each other's names.
 */
const LETTER = /^[a-z]$/.test(process.env.BULKHEAD_TEST_NETNS_LETTER ?? "") ? process.env.BULKHEAD_TEST_NETNS_LETTER! : "t";

export class Topology {
  readonly run = randomBytes(3).toString("hex").slice(0, 3);
  /** Bulkhead instance id for this run (4 characters, unique per run). */
  readonly instanceId = `${LETTER}${this.run}`;
  readonly host = `bh${LETTER}-${this.run}-host`;
  readonly outside = `bh${LETTER}-${this.run}-out`;
  readonly hostAddress4 = "10.77.0.1";
  readonly hostAddress6 = "fd77::1";
  readonly dir = mkdtempSync(path.join(tmpdir(), "bh-isolation-"));
  private socketDir = "";
  private relay: net.Server | null = null;
  private readonly children = new Set<ChildProcess>();
  private readonly helpers: NetnsHelper[] = [];

  constructor(private readonly options: TopologyOptions) {}

  async setUp(): Promise<void> {
    const ipn = (ns: string, ...args: string[]) => must("ip", ["-n", ns, ...args]);
    await must("ip", ["netns", "add", this.host]);
    await must("ip", ["netns", "add", this.outside]);
    for (const ns of [this.host, this.outside]) await ipn(ns, "link", "set", "lo", "up");
    await ipn(this.host, "link", "add", "up0", "type", "veth", "peer", "name", "dn0", "netns", this.outside);
    await ipn(this.host, "addr", "add", "10.77.0.1/24", "dev", "up0");
    await ipn(this.host, "-6", "addr", "add", "fd77::1/64", "dev", "up0", "nodad");
    await ipn(this.outside, "addr", "add", "10.77.0.2/24", "dev", "dn0");
    await ipn(this.outside, "-6", "addr", "add", "fd77::2/64", "dev", "dn0", "nodad");
    await ipn(this.host, "link", "set", "up0", "up");
    await ipn(this.outside, "link", "set", "dn0", "up");
    await ipn(this.host, "route", "add", "default", "via", "10.77.0.2");
    await ipn(this.host, "-6", "route", "add", "default", "via", "fd77::2");
    await ipn(this.outside, "route", "add", "default", "via", "10.77.0.1");
    await ipn(this.outside, "-6", "route", "add", "default", "via", "fd77::1");
    for (const a of this.options.outsideAddresses) await ipn(this.outside, "addr", "add", a.includes(":") ? `${a}/128` : `${a}/32`, "dev", "lo", ...(a.includes(":") ? ["nodad"] : []));
    // The host is a router: only the fence keeps sandbox traffic from being forwarded outside.
    await must("ip", ["netns", "exec", this.host, "/bin/sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding"]);
    const etc = path.join("/etc/netns", this.host);
    mkdirSync(etc, { recursive: true });
    const lines = Object.entries(this.options.hosts).map(([name, address]) => `${address} ${name} ${name}.`);
    writeFileSync(path.join(etc, "hosts"), `127.0.0.1 localhost\n${lines.join("\n")}\n`);
    writeFileSync(path.join(etc, "resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    await this.startRelay();
  }

  /** PostgreSQL for processes in the namespaces: a Unix socket relayed to the test server. */
  private async startRelay(): Promise<void> {
    const target = new URL(this.options.database.url);
    const socketDir = path.join(this.dir, "pg");
    mkdirSync(socketDir, { recursive: true });
    this.relay = net.createServer((client) => {
      const upstream = net.connect({ host: target.hostname, port: Number(target.port) });
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.relay!.listen(path.join(socketDir, ".s.PGSQL.5432"), () => r()));
    this.socketDir = socketDir;
  }

  /** `databaseUrl` (of the test server) as processes in the namespaces reach it: through the relay. */
  relayed(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = "localhost";
    url.port = "";
    url.searchParams.set("host", this.socketDir);
    return url.toString();
  }

  async helper(netns: string): Promise<NetnsHelper> {
    const h = await NetnsHelper.start(netns);
    this.helpers.push(h);
    return h;
  }

  /** Environment of Bulkhead's processes in the host namespace. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
      HOME: this.dir,
      // Each process connects as its own role, as `bulkhead start` arranges it.
      DATABASE_URL: this.relayed(this.options.database.ownerUrl),
      BULKHEAD_DASHBOARD_DATABASE_URL: this.relayed(this.options.database.url),
      BULKHEAD_WORKER_DATABASE_URL: this.relayed(this.options.database.workerUrl),
      BULKHEAD_DATA_DIR: path.join(this.dir, "data"),
      BULKHEAD_INSTANCE_ID: this.instanceId,
      BULKHEAD_ISOLATION: "on",
      BULKHEAD_PROXY_HOST: this.hostAddress4,
      BULKHEAD_WORKER_HEALTH_HOST: this.hostAddress4,
      BULKHEAD_AUDIT_WAL_DIR: path.join(this.dir, "audit-wal"),
      BULKHEAD_SANDBOX_SNIFF_MS: "300",
      LOG_LEVEL: process.env.BULKHEAD_TEST_LOG ?? "warn",
      ...extra,
    } as unknown as NodeJS.ProcessEnv;
  }

  /**
   * Starts `bulkhead ARGS` inside the host namespace (not waited for). The worker runs under
   * `ip netns exec` (it needs the host namespace's hosts file); the launcher only enters the
   * network namespace (nsenter), so the sandbox namespaces it mounts under /run/netns are visible
   * to everyone, as on a real machine, rather than only inside a private mount namespace.
   */
  spawnBulkhead(args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess & { output: { stdout: string; stderr: string } } {
    const enter = args[0] === "worker" ? ["ip", "netns", "exec", this.host] : ["nsenter", `--net=/run/netns/${this.host}`, "--"];
    const child = spawn(enter[0]!, [...enter.slice(1), process.execPath, path.join(ROOT, "bin/bulkhead.mjs"), ...args], { env, cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const output = { stdout: "", stderr: "" };
    child.stdout.on("data", (d: Buffer) => (output.stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output.stderr += d.toString()));
    this.children.add(child);
    child.on("exit", () => this.children.delete(child));
    return Object.assign(child, { output });
  }

  /** Runs `bulkhead ARGS` inside the host namespace to completion. */
  async bulkhead(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 240_000): Promise<RunResult> {
    const child = this.spawnBulkhead(args, env);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const code = await new Promise<number>((r) => child.on("close", (c) => r(c ?? 1)));
    clearTimeout(timer);
    return { code, ...child.output };
  }

  async close(): Promise<void> {
    for (const h of this.helpers) h.close();
    for (const c of this.children) c.kill("SIGKILL");
    this.relay?.close();
    // Everything named after this run or its instance ids: namespaces (with whatever still runs
    // in them), their /etc/netns and /run files. Interfaces go with their namespaces.
    const list = await sh("ip", ["netns", "list"]);
    const ours = list.stdout
      .split("\n")
      .map((l) => l.split(" ")[0] ?? "")
      .filter((n) => n.startsWith(`bh${LETTER}-${this.run}-`) || new RegExp(`^bh-[a-z]${this.run}-`).test(n));
    for (const ns of ours) {
      const pids = (await sh("ip", ["netns", "pids", ns])).stdout.split(/\s+/).filter((p) => /^[0-9]+$/.test(p));
      for (const pid of pids) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    // Sandbox namespaces first (their veths live in host), then host and outside.
    const own = (n: string) => n.startsWith(`bh${LETTER}-${this.run}-`);
    for (const ns of ours.sort((a, b) => Number(own(a)) - Number(own(b)))) await sh("ip", ["netns", "del", ns]);
    const mine = new RegExp(`^(bh${LETTER}-${this.run}-|bh-[a-z]${this.run}-)`);
    for (const dir of ["/etc/netns", "/run/bulkhead-sandbox"]) {
      for (const entry of existsSync(dir) ? readdirSync(dir) : []) if (mine.test(entry)) rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
    rmSync(path.join("/etc/netns", this.host), { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
