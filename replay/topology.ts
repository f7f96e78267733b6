/**
 * The replay's private network, made of namespaces this run owns and removes:
 *   host    the machine Bulkhead runs on: the worker, the sandbox launcher, and (isolation off)
 *           the agent itself run inside it; its hosts file names the API.
 *   outside the internet: the Railway-like API and a public resolver, routed from host by a veth
 *           pair. The host forwards, so only Bulkhead's fence stands between a sandbox and outside.
 * Nothing is added to the namespace the replay was started in. The worker reaches PostgreSQL
 * through a Unix-socket relay (sockets cross namespaces). close() removes every namespace,
 * interface, file and process of the run, also after a failure.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { packageRoot } from "@/lib/package-root";

/** The checkout: found from Bulkhead's package.json, so the compiled CLI (dist/cli/<build>/) finds it too. */
const ROOT = packageRoot();
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: options.env ?? ({ PATH: SYSTEM_PATH } as unknown as NodeJS.ProcessEnv), cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (error) => (stderr += String(error)));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

async function must(file: string, args: readonly string[]): Promise<string> {
  const r = await run(file, args);
  if (r.code !== 0) throw new Error(`${file} ${args.join(" ")} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

export interface ReplayTopologyOptions {
  /** Name -> address entries of the host namespace's hosts file. */
  hosts: Record<string, string>;
  /** Addresses on the outside namespace's `lo`. */
  outsideAddresses: string[];
  /** The PostgreSQL server the worker uses (host and port are relayed). */
  databaseUrl: string;
}

export class ReplayTopology {
  readonly run = randomBytes(3).toString("hex").slice(0, 3);
  /** Bulkhead instance id for this run: sandboxes are named after it. */
  readonly instanceId = `r${this.run}`;
  readonly host = `bhr-${this.run}-host`;
  readonly outside = `bhr-${this.run}-out`;
  readonly hostAddress4 = "10.79.0.1";
  readonly dir = mkdtempSync(path.join(tmpdir(), "bh-replay-"));
  private socketDir = "";
  private relay: net.Server | null = null;
  private readonly children = new Set<ChildProcess>();

  constructor(private readonly options: ReplayTopologyOptions) {}

  async setUp(): Promise<void> {
    const ipn = (ns: string, ...args: string[]) => must("ip", ["-n", ns, ...args]);
    await must("ip", ["netns", "add", this.host]);
    await must("ip", ["netns", "add", this.outside]);
    for (const ns of [this.host, this.outside]) await ipn(ns, "link", "set", "lo", "up");
    await ipn(this.host, "link", "add", "up0", "type", "veth", "peer", "name", "dn0", "netns", this.outside);
    await ipn(this.host, "addr", "add", "10.79.0.1/24", "dev", "up0");
    await ipn(this.outside, "addr", "add", "10.79.0.2/24", "dev", "dn0");
    await ipn(this.host, "link", "set", "up0", "up");
    await ipn(this.outside, "link", "set", "dn0", "up");
    await ipn(this.host, "route", "add", "default", "via", "10.79.0.2");
    await ipn(this.outside, "route", "add", "default", "via", "10.79.0.1");
    for (const a of this.options.outsideAddresses) await ipn(this.outside, "addr", "add", `${a}/32`, "dev", "lo");
    // The host is a router: only the fence keeps sandbox traffic from being forwarded outside.
    await must("ip", ["netns", "exec", this.host, "/bin/sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
    const etc = path.join("/etc/netns", this.host);
    mkdirSync(etc, { recursive: true });
    const lines = Object.entries(this.options.hosts).map(([name, address]) => `${address} ${name} ${name}.`);
    writeFileSync(path.join(etc, "hosts"), `127.0.0.1 localhost\n${lines.join("\n")}\n`);
    writeFileSync(path.join(etc, "resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    await this.startRelay();
  }

  private async startRelay(): Promise<void> {
    const target = new URL(this.options.databaseUrl);
    const socketDir = path.join(this.dir, "pg");
    mkdirSync(socketDir, { recursive: true });
    this.relay = net.createServer((client) => {
      const upstream = net.connect({ host: target.hostname, port: Number(target.port || 5432) });
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.relay!.listen(path.join(socketDir, ".s.PGSQL.5432"), () => r()));
    this.socketDir = socketDir;
  }

  /** `databaseUrl` as processes in the namespaces reach it: through the relay. */
  relayed(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = "localhost";
    url.port = "";
    url.searchParams.set("host", this.socketDir);
    return url.toString();
  }

  /** Starts a TypeScript module inside `netns` with an IPC channel (the outside's servers). */
  forkIn(netns: string, modulePath: string, args: readonly string[]): ChildProcess {
    const child = fork(modulePath, [...args], { execPath: "/usr/sbin/ip", execArgv: ["netns", "exec", netns, process.execPath, "--import", "tsx"], cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.track(child);
    return child;
  }

  private track(child: ChildProcess): void {
    this.children.add(child);
    child.on("exit", () => this.children.delete(child));
  }

  /**
   * Starts `bulkhead ARGS` in the host namespace. The worker runs under `ip netns exec` (it needs
   * the hosts file); the launcher only enters the network namespace, so the sandbox namespaces it
   * mounts under /run/netns are visible to everyone.
   */
  spawnBulkhead(args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess & { output: { stdout: string; stderr: string } } {
    const enter = args[0] === "worker" ? ["ip", "netns", "exec", this.host] : ["nsenter", `--net=/run/netns/${this.host}`, "--"];
    return this.spawnTracked(enter, [process.execPath, path.join(ROOT, "bin/bulkhead.mjs"), ...args], env);
  }

  /** Runs a command on the host namespace's network (with its hosts file) to completion. */
  async runOnHost(command: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<RunResult> {
    return this.finish(this.spawnTracked(["ip", "netns", "exec", this.host], command, env), timeoutMs);
  }

  async bulkhead(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 240_000): Promise<RunResult> {
    return this.finish(this.spawnBulkhead(args, env), timeoutMs);
  }

  private spawnTracked(enter: readonly string[], command: readonly string[], env: NodeJS.ProcessEnv) {
    const child = spawn(enter[0]!, [...enter.slice(1), ...command], { env, cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const output = { stdout: "", stderr: "" };
    child.stdout.on("data", (d: Buffer) => (output.stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output.stderr += d.toString()));
    this.track(child);
    return Object.assign(child, { output });
  }

  private async finish(child: ChildProcess & { output: { stdout: string; stderr: string } }, timeoutMs: number): Promise<RunResult> {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    // "close" waits for the output to end; a grandchild left holding it must not hang the replay.
    const code = await new Promise<number>((r) => {
      child.on("close", (c) => r(c ?? 1));
      child.on("exit", (c) => setTimeout(() => r(c ?? 1), 2000).unref());
    });
    clearTimeout(timer);
    return { code, ...child.output };
  }

  async close(): Promise<void> {
    for (const c of this.children) c.kill("SIGKILL");
    this.relay?.close();
    const list = await run("ip", ["netns", "list"]);
    const mine = new RegExp(`^(bhr-${this.run}-|bh-${this.instanceId}-)`);
    const ours = list.stdout
      .split("\n")
      .map((l) => l.split(" ")[0] ?? "")
      .filter((n) => mine.test(n));
    for (const ns of ours) {
      const pids = (await run("ip", ["netns", "pids", ns])).stdout.split(/\s+/).filter((p) => /^[0-9]+$/.test(p));
      for (const pid of pids) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone already
        }
      }
    }
    // Sandbox namespaces first (their veths live in host), then host and outside.
    for (const ns of ours.sort((a, b) => Number(a.startsWith("bhr-")) - Number(b.startsWith("bhr-")))) await run("ip", ["netns", "del", ns]);
    for (const dir of ["/etc/netns", "/run/bulkhead-sandbox"]) {
      for (const entry of existsSync(dir) ? readdirSync(dir) : []) if (mine.test(entry)) rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
