/**
 * `npm run bench -- deployment` (root): Bulkhead as people run it, measured beside the minimal
 * Node proxy. The real `bulkhead start` (embedded PostgreSQL, dashboard, compiled worker, every
 * process with its own keys and database role) runs in a fresh data folder; plain GETs go through
 * its explicit proxy to a loopback upstream, interleaved with the same load through path N
 * (bench/node-proxy.ts) to the same upstream. Nothing is pinned: the load generator, the
 * upstream, the launcher's processes and N share the machine's cores, as on a developer's or a
 * small VM's `npm start`. The one setting changed from the defaults: the per-task and per-agent
 * request rate limits are lifted, so that the saturation run measures the proxy, not the limit.
 *
 * The worker resolves names itself (with the system resolver, fully qualified), so the whole run
 * happens in a network namespace of its own whose hosts file sends the bench's service name to
 * loopback: this process creates the namespace (only loopback, up), runs itself inside it with
 * `ip netns exec`, and removes the namespace and its hosts file afterwards. Nothing is added to
 * the machine's own namespace.
 *
 * Settings: BENCH_RATES (default 500,1000), BENCH_REPEATS (3), BENCH_SECONDS (5), BENCH_SAT_SECONDS
 * (5), BENCH_CONCURRENCY (64). Prints the table and writes bench/results/deployment.json.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateMasterKey, parseMasterKey } from "@/lib/crypto/envelope";
import { createTestPki } from "@/tests/support/upstreams";
import type { ClosedLoopSpec, LoadResult, OpenLoopSpec, Scenario, Watch } from "./load";
import { installCleanupHandlers, runMain, start, startNode, tempFolder } from "./support/children";
import { describeMachine } from "./support/machine";
import { freePort } from "./support/ports";
import { HOSTS, REST_PATH, seed } from "./support/seed";
import { childPids, median, round } from "./support/stats";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const int = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
};
const SECRET = "bench-upstream-secret-0123456789";

export interface DeploymentRun extends LoadResult {
  path: "N" | "F";
  repeat: number;
}

export interface DeploymentResult {
  at: string;
  machine: Awaited<ReturnType<typeof describeMachine>>;
  settings: { rates: number[]; repeats: number; seconds: number; satSeconds: number; concurrency: number };
  processes: Record<string, string>;
  runs: DeploymentRun[];
  ratios: Array<{ what: string; perRepeat: number[]; median: number; bar: string; met: boolean }>;
  durationSeconds: number;
}

/** Outside: the namespace, then this file again inside it. */
async function runDeploymentBench(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the deployment bench needs root: it runs `bulkhead start` in a network namespace of its own");
  if (spawnSync("ip", ["-V"]).status !== 0) throw new Error("the deployment bench needs iproute2 (`ip`)");
  const ns = `bhdeploy${process.pid}`;
  const etc = path.join("/etc/netns", ns);
  const cleanup = () => {
    spawnSync("ip", ["netns", "del", ns]);
    rmSync(etc, { recursive: true, force: true });
  };
  try {
    mkdirSync(etc, { recursive: true });
    // `ip netns exec` mounts these over /etc/hosts and /etc/resolv.conf inside the namespace.
    writeFileSync(path.join(etc, "hosts"), `127.0.0.1 localhost localhost.\n127.0.0.1 ${HOSTS.rest} ${HOSTS.rest}.\n`);
    writeFileSync(path.join(etc, "resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    for (const args of [["netns", "add", ns], ["-n", ns, "link", "set", "lo", "up"]]) {
      const r = spawnSync("ip", args, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
    }
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "--import", "tsx", fileURLToPath(import.meta.url)], {
      cwd: root,
      env: { ...process.env, BENCH_DEPLOYMENT_INSIDE: "1" },
      stdio: "inherit",
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    const code = await new Promise<number>((resolve) => child.once("exit", (c, s) => resolve(c ?? (s ? 128 : 1))));
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    if (code !== 0) throw new Error(`the deployment bench failed inside its namespace (exit ${code})`);
  } finally {
    cleanup();
  }
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, alive: () => string | null): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const dead = alive();
    if (dead) throw new Error(`${what}: ${dead}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s`);
}

/** Inside the namespace: everything else. */
async function inside(): Promise<void> {
  installCleanupHandlers();
  const began = Date.now();
  const rates = (process.env.BENCH_RATES ?? "500,1000").split(",").map(Number).filter((n) => n > 0);
  const settings = { rates, repeats: int("BENCH_REPEATS", 3), seconds: int("BENCH_SECONDS", 5), satSeconds: int("BENCH_SAT_SECONDS", 5), concurrency: int("BENCH_CONCURRENCY", 64) };
  const machine = await describeMachine();
  console.log(`deployment bench: ${machine.nproc} × ${machine.cpuModel}, Node ${process.version}; background busy ${JSON.stringify(machine.backgroundBusy)}; nothing pinned`);

  const dir = tempFolder("bulkhead-deploy-");
  const pki = await createTestPki();
  const cert = await pki.serverCert(HOSTS.github);
  writeFileSync(path.join(dir, "cert.pem"), cert.certPem);
  writeFileSync(path.join(dir, "key.pem"), cert.keyPem);
  const upstream = await startNode<{ httpPort: number; httpsPort: number }>("upstream", "bench/upstream.ts", { env: { BENCH_TLS_CERT: path.join(dir, "cert.pem"), BENCH_TLS_KEY: path.join(dir, "key.pem"), BENCH_SECRET: SECRET } });
  const nodeProxy = await startNode<{ port: number }>("node-proxy", "bench/node-proxy.ts", { env: { BENCH_UPSTREAM_PORT: String(upstream.info.httpPort), BENCH_SECRET: SECRET } });
  const load = await startNode<{ pid: number }>("load", "bench/load.ts");

  // `bulkhead start` exactly as the README says, in a data folder of its own, on free ports.
  const dataDir = path.join(dir, "data");
  chmodSync(dir, 0o711); // the embedded server runs as its own user and must reach its folder
  const ports = {
    BULKHEAD_APP_PORT: await freePort(),
    BULKHEAD_PG_PORT: await freePort(),
    BULKHEAD_PROXY_PORT: await freePort(),
    BULKHEAD_WORKER_HEALTH_PORT: await freePort(),
    BULKHEAD_TRANSPARENT_HTTP_PORT: await freePort(),
    BULKHEAD_TRANSPARENT_TLS_PORT: await freePort(),
  };
  const masterText = generateMasterKey();
  const env: Record<string, string | undefined> = { BULKHEAD_DATA_DIR: dataDir, BULKHEAD_MASTER_KEY: masterText, AUTH_SECRET: `deployment-bench-${process.pid}-session-secret-0123456789`, DATABASE_URL: undefined };
  for (const [k, v] of Object.entries(ports)) env[k] = String(v);
  // The one setting changed from the defaults: the per-task and per-agent request rate limits
  // (1,000 and 2,000 per second), which would otherwise answer part of the saturation run with 429.
  env.BULKHEAD_TASK_REQUESTS_PER_SECOND = "1000000";
  env.BULKHEAD_AGENT_REQUESTS_PER_SECOND = "1000000";
  // BENCH_CPU_PROF=<dir>: the launcher and every process it forks (they inherit its Node flags)
  // write a CPU profile there as they exit.
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];
  console.log("starting `bulkhead start` (builds the dashboard and the compiled worker first if their sources changed)...");
  const launcher = start("bulkhead-start", process.execPath, [...profile, path.join(root, "bin", "bulkhead.mjs"), "start"], { env, cwd: root });
  const exited = () => (launcher.proc.exitCode !== null || launcher.proc.signalCode !== null ? `bulkhead start exited (${launcher.proc.exitCode ?? launcher.proc.signalCode}):\n${launcher.logTail()}` : null);
  await waitFor("the worker's /readyz", 20 * 60_000, async () => (await fetch(`http://127.0.0.1:${ports.BULKHEAD_WORKER_HEALTH_PORT}/readyz`)).ok, exited);

  // The bench plays an admin: the same seed as the suite, through the launcher's own database.
  const password = readFileSync(path.join(dataDir, "postgres.password"), "utf8").trim();
  const databaseUrl = `postgresql://bulkhead:${encodeURIComponent(password)}@127.0.0.1:${ports.BULKHEAD_PG_PORT}/bulkhead`;
  const seeded = await seed({ databaseUrl, masterKey: parseMasterKey(masterText), httpPort: upstream.info.httpPort, httpsPort: upstream.info.httpsPort, secret: SECRET });
  await seeded.db.$disconnect();

  const url = `http://${HOSTS.rest}:${upstream.info.httpPort}${REST_PATH}`;
  const scenario = (id: "N" | "F", port: number): Scenario => ({ name: id, target: { kind: "forward", proxy: `http://127.0.0.1:${port}`, url }, headers: { "x-bench-path": id }, tokens: [seeded.token] });
  const scenarios = { N: scenario("N", nodeProxy.info.port), F: scenario("F", ports.BULKHEAD_PROXY_PORT) };
  // The new service reaches the running worker through its reload: wait until F forwards.
  await waitFor("the seeded service through the running worker", 60_000, async () => {
    const r = await load.ipc.call<LoadResult>("closed", { scenario: scenarios.F, concurrency: 1, durationMs: 200, warmupMs: 0 } satisfies ClosedLoopSpec, 30_000);
    return r.ok > 0 && r.errors === 0;
  }, exited);

  const children = childPids(launcher.pid).map((pid) => ({ pid, cmd: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ") }));
  const worker = children.find((c) => / worker\b/.test(c.cmd));
  const dashboard = children.find((c) => c.cmd.includes("app-server"));
  const postgres = children.find((c) => /postgres/.test(c.cmd) && !c.cmd.includes("app-server"));
  if (!worker) throw new Error(`no worker among the launcher's processes: ${JSON.stringify(children)}`);
  const processes: Record<string, string> = Object.fromEntries(children.map((c) => [String(c.pid), c.cmd.slice(0, 160)]));
  const watch = (id: "N" | "F"): Watch => ({
    proxy: [id === "N" ? nodeProxy.pid : worker.pid],
    ...(postgres ? { postgres: { tree: postgres.pid } } : {}),
    ...(dashboard ? { dashboard: { tree: dashboard.pid } } : {}),
    load: [load.pid],
    upstream: [upstream.pid],
  });

  // Warm both paths (connections, JIT, the token cache), then interleave N F N F.
  for (const id of ["N", "F"] as const) await load.ipc.call<LoadResult>("closed", { scenario: scenarios[id], concurrency: 8, durationMs: 2000, warmupMs: 0 } satisfies ClosedLoopSpec, 62_000);
  const runs: DeploymentRun[] = [];
  const show = (r: DeploymentRun) =>
    console.log(
      `${r.path} ${r.mode === "open" ? `${r.rate} rps` : `${r.concurrency} conns`}`.padEnd(16) +
        `achieved ${String(r.achievedRps).padStart(6)} rps  errors ${r.errors}${r.errors ? ` ${JSON.stringify(r.errorKinds)}` : ""}  p50 ${round(r.latencyUs.p50)} p90 ${round(r.latencyUs.p90)} p99 ${round(r.latencyUs.p99)} µs  cpu ${JSON.stringify(r.cpu.processes)}`,
    );
  for (let repeat = 0; repeat < settings.repeats; repeat++) {
    for (const rate of settings.rates) {
      for (const id of ["N", "F"] as const) {
        const spec: OpenLoopSpec = { scenario: scenarios[id], rate, durationMs: settings.seconds * 1000, warmupMs: 1000, connections: settings.concurrency, watch: watch(id) };
        const r = { ...(await load.ipc.call<LoadResult>("open", spec, settings.seconds * 1000 + 61_000)), path: id, repeat };
        runs.push(r);
        show(r);
      }
    }
    for (const id of ["N", "F"] as const) {
      const spec: ClosedLoopSpec = { scenario: scenarios[id], concurrency: settings.concurrency, durationMs: settings.satSeconds * 1000, warmupMs: 1000, watch: watch(id) };
      const r = { ...(await load.ipc.call<LoadResult>("closed", spec, settings.satSeconds * 1000 + 61_000)), path: id, repeat };
      runs.push(r);
      show(r);
    }
  }

  const ratio = (pick: (r: DeploymentRun) => boolean, value: (r: DeploymentRun) => number) => {
    const per: number[] = [];
    for (let repeat = 0; repeat < settings.repeats; repeat++) {
      const f = runs.find((r) => r.repeat === repeat && r.path === "F" && pick(r));
      const n = runs.find((r) => r.repeat === repeat && r.path === "N" && pick(r));
      if (f && n && value(n) > 0) per.push(value(f) / value(n));
    }
    return per;
  };
  const ratios: DeploymentResult["ratios"] = [];
  for (const rate of settings.rates) {
    const per = ratio((r) => r.mode === "open" && r.rate === rate, (r) => r.latencyUs.p50);
    ratios.push({ what: `${rate} rps: F p50 / N p50`, perRepeat: per.map((v) => round(v, 2)), median: round(median(per), 2), bar: "≤ 1.3×", met: median(per) <= 1.3 });
  }
  const sat = ratio((r) => r.mode === "closed", (r) => r.achievedRps);
  ratios.push({ what: `saturation (${settings.concurrency} connections): F / N throughput`, perRepeat: sat.map((v) => round(v, 2)), median: round(median(sat), 2), bar: "≥ 0.7×", met: median(sat) >= 0.7 });

  console.log("\nagainst the bar (medians of the per-repeat ratios):");
  for (const r of ratios) console.log(`  ${r.what}: ${r.median}× (per repeat ${r.perRepeat.join(", ")}) [${r.bar}] ${r.met ? "met" : "NOT met"}`);
  const result: DeploymentResult = { at: new Date().toISOString(), machine, settings, processes, runs, ratios, durationSeconds: Math.round((Date.now() - began) / 1000) };
  const out = path.join(root, "bench", "results", "deployment.json");
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${path.relative(root, out)}`);
}

// Inside the namespace the run itself; outside, the namespace around it (which starts no bench
// process of its own, so cleaning up finds nothing and only the exit code matters).
runMain(process.env.BENCH_DEPLOYMENT_INSIDE === "1" ? inside : runDeploymentBench, { stack: process.env.BENCH_DEPLOYMENT_INSIDE === "1" });
