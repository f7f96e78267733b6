/**
 * Everything a bench run measures against, started once and left running so the paths can be
 * interleaved: the upstream and the load generator on the client core; Postgres, four Bulkhead
 * workers (the product; audit off; metrics off; strict audit), the minimal Node proxy, nginx and mitmdump on
 * the proxy core. Idle processes cost next to nothing, so they can all stay up.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { generateMasterKey, parseMasterKey } from "@/lib/crypto/envelope";
import { deriveProcessKeys, workerKeyEnvironment } from "@/lib/keys/process-keys";
import { createTestPki } from "@/tests/support/upstreams";
import type { Scenario, Watch } from "../load";
import { runFolder, startNode, tempFolder, type NodeChild } from "./children";
import { startMitmdump, type Mitm } from "./mitm";
import { startNginx, type Nginx } from "./nginx";
import { HOSTS, mintColdTokens, REST_PATH, seed, type Seeded } from "./seed";

export interface PathDef {
  id: string;
  what: string;
  /** Open-loop rates this path runs at (null: every configured rate; []: none). */
  rates: number[] | null;
  saturate: boolean;
  /** The scenario for repeat `repeat` (only the cold-token path differs per repeat). */
  scenario(repeat: number): Scenario;
  watch(): Watch;
}

interface WorkerInfo {
  port: number;
  pid: number;
  caPem: string;
}

export interface Environment {
  masterKey: Buffer;
  databaseUrl: string;
  seeded: Seeded;
  upstream: NodeChild<{ httpPort: number; httpsPort: number }>;
  worker: NodeChild<WorkerInfo>;
  workerNoAudit: NodeChild<WorkerInfo>;
  workerNoMetrics: NodeChild<WorkerInfo>;
  workerStrict: NodeChild<WorkerInfo>;
  load: NodeChild<{ pid: number }>;
  nginx: Nginx | null;
  mitm: Mitm | null;
  paths: PathDef[];
  skipped: string[];
  /** Scenario for propagation probes through worker F with `token`. */
  probe(token: string): Scenario;
}

const SECRET = "bench-upstream-secret-0123456789";

export async function startEnvironment(o: { clientCpus?: string; proxyCpus?: string; coldTokens: { rate: number; perRepeat: number; repeats: number } }): Promise<Environment> {
  const dir = runFolder();
  const skipped: string[] = [];
  const pki = await createTestPki();
  const cert = await pki.serverCert(HOSTS.github);
  const file = (name: string, text: string) => {
    writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const caFile = file("upstream-ca.pem", pki.caPem);
  const upstream = await startNode<{ httpPort: number; httpsPort: number }>("upstream", "bench/upstream.ts", {
    cpus: o.clientCpus,
    env: { BENCH_TLS_CERT: file("upstream-cert.pem", cert.certPem), BENCH_TLS_KEY: file("upstream-key.pem", cert.keyPem), BENCH_SECRET: SECRET },
  });
  const postgres = await startNode<{ url: string }>("postgres", "bench/postgres-child.ts", { cpus: o.proxyCpus, env: { BENCH_PG_DIR: tempFolder("bulkhead-bench-pg-") } });
  const masterKey = parseMasterKey(generateMasterKey());
  const seeded = await seed({ databaseUrl: postgres.info.url, masterKey, httpPort: upstream.info.httpPort, httpsPort: upstream.info.httpsPort, secret: SECRET });
  const cold = await mintColdTokens(seeded, masterKey, o.coldTokens.perRepeat * o.coldTokens.repeats);

  const startWorker = (id: string, audit: "writer" | "none", metrics: "on" | "off" = "on", durability: "group" | "strict" = "group") => {
    const wal = path.join(dir, `wal-${id}`);
    mkdirSync(wal, { recursive: true });
    // BENCH_CPU_PROF=<dir>: the full worker writes a CPU profile there when it stops.
    const profile = process.env.BENCH_CPU_PROF && id === "full" ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];
    return startNode<WorkerInfo>(`bulkhead-${id}`, "bench/bulkhead-child.ts", {
      cpus: o.proxyCpus,
      compiled: true, // the product runs the compiled worker (scripts/cli-build.mjs), so does F
      // --expose-gc only for the memory soak's before/after collections; BENCH_WORKER_NODE_ARGS
      // (space-separated) adds V8/Node flags to every Bulkhead worker, to compare settings.
      nodeArgs: ["--expose-gc", ...profile, ...(process.env.BENCH_WORKER_NODE_ARGS?.split(" ").filter(Boolean) ?? [])],
      // Like the launcher: the worker gets its own keys, never the master key.
      env: { DATABASE_URL: postgres.info.url, ...workerKeyEnvironment(deriveProcessKeys(masterKey)), BENCH_UPSTREAM_CA_FILE: caFile, BENCH_WAL_DIR: wal, BENCH_WORKER_ID: id, BENCH_AUDIT: audit, BENCH_METRICS: metrics, BENCH_AUDIT_DURABILITY: durability },
    });
  };
  const worker = await startWorker("full", "writer");
  const workerNoAudit = await startWorker("noaudit", "none");
  const workerNoMetrics = await startWorker("nometrics", "writer", "off");
  const workerStrict = await startWorker("strict", "writer", "on", "strict");
  // With BENCH_CPU_PROF, N writes its profile to <dir>/N when it stops (the floor beside F's).
  const nProfile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${path.join(path.resolve(process.env.BENCH_CPU_PROF), "N")}`] : [];
  const nodeProxy = await startNode<{ port: number }>("node-proxy", "bench/node-proxy.ts", { cpus: o.proxyCpus, nodeArgs: nProfile, env: { BENCH_UPSTREAM_PORT: String(upstream.info.httpPort), BENCH_SECRET: SECRET } });
  const nginxStarted = await startNginx({ upstreamPort: upstream.info.httpPort, secret: SECRET, cpus: o.proxyCpus ?? "" });
  const nginx = "skipped" in nginxStarted ? (skipped.push(nginxStarted.skipped), null) : nginxStarted;
  const mitmStarted = await startMitmdump({ upstreamCaFile: caFile, cpus: o.proxyCpus ?? "" });
  const mitm = "skipped" in mitmStarted ? (skipped.push(mitmStarted.skipped), null) : mitmStarted;
  const load = await startNode<{ pid: number }>("load", "bench/load.ts", { cpus: o.clientCpus });

  const { httpPort, httpsPort } = upstream.info;
  const restUrl = (host: string) => `http://${host}:${httpPort}${REST_PATH}`;
  const tag = (id: string) => ({ "x-bench-path": id });
  const forward = (id: string, port: number, host: string, tokens: string[]): Scenario => ({ name: id, target: { kind: "forward", proxy: `http://127.0.0.1:${port}`, url: restUrl(host) }, headers: tag(id), tokens });
  // Backends come and go (pools close idle connections): the tree is read again at the end.
  const pg = () => ({ tree: postgres.pid });
  const up = [upstream.pid];
  const token = [seeded.token];
  const tunnel = (id: string, proxyPort: number, connect: string, caPem: string, newConnectionPerRequest = false): Scenario => ({
    name: id,
    target: { kind: "tunnel", proxy: `http://127.0.0.1:${proxyPort}`, connect, origin: `https://${HOSTS.github}:${httpsPort}`, servername: HOSTS.github, caPem, path: REST_PATH },
    headers: tag(id),
    tokens: token,
    newConnectionPerRequest,
  });

  const paths: PathDef[] = [
    { id: "A", what: "client → upstream directly (plain HTTP, keep-alive)", rates: null, saturate: true, scenario: () => ({ name: "A", target: { kind: "direct", origin: `http://127.0.0.1:${httpPort}`, path: REST_PATH }, headers: tag("A") }), watch: () => ({ upstream: up }) },
    { id: "N", what: "client → minimal Node proxy (node:http + undici pool + one injected header)", rates: null, saturate: true, scenario: () => forward("N", nodeProxy.info.port, HOSTS.rest, token), watch: () => ({ proxy: [nodeProxy.pid], upstream: up }) },
  ];
  if (nginx) paths.push({ id: "G", what: "client → nginx reverse proxy (upstream keep-alive, one set header)", rates: null, saturate: true, scenario: () => forward("G", nginx.port, HOSTS.rest, token), watch: () => ({ proxy: nginx.workerPids(), upstream: up }) });
  paths.push(
    { id: "F", what: "client → Bulkhead, full pipeline (token, classify, decide, credential injection, durable audit)", rates: null, saturate: true, scenario: () => forward("F", worker.info.port, HOSTS.rest, token), watch: () => ({ proxy: [worker.pid], postgres: pg(), upstream: up }) },
    { id: "F-noaudit", what: "F with a no-op audit sink (a second worker process): nothing waits for Postgres", rates: [1000], saturate: true, scenario: () => forward("F-noaudit", workerNoAudit.info.port, HOSTS.rest, token), watch: () => ({ proxy: [workerNoAudit.pid], postgres: pg(), upstream: up }) },
    { id: "F-strict", what: "F with the audit log in strict mode (a fourth worker process): fsync before forwarding", rates: [1000], saturate: true, scenario: () => forward("F-strict", workerStrict.info.port, HOSTS.rest, token), watch: () => ({ proxy: [workerStrict.pid], postgres: pg(), upstream: up }) },
    { id: "F-nometrics", what: "F without Prometheus metrics (a third worker process; audit on)", rates: [1000], saturate: true, scenario: () => forward("F-nometrics", workerNoMetrics.info.port, HOSTS.rest, token), watch: () => ({ proxy: [workerNoMetrics.pid], postgres: pg(), upstream: up }) },
    { id: "F-nocred", what: "F to a service without a credential: no injection, no response redaction", rates: [1000], saturate: true, scenario: () => forward("F-nocred", worker.info.port, HOSTS.nocred, token), watch: () => ({ proxy: [worker.pid], postgres: pg(), upstream: up }) },
    {
      id: "F-coldtoken",
      what: "F where every request carries a different token: each one a token-cache miss (full Ed25519 verification)",
      rates: [o.coldTokens.rate],
      saturate: false,
      scenario: (repeat) => ({ ...forward("F-coldtoken", worker.info.port, HOSTS.rest, cold.slice(repeat * o.coldTokens.perRepeat, (repeat + 1) * o.coldTokens.perRepeat)) }),
      watch: () => ({ proxy: [worker.pid], postgres: pg(), upstream: up }),
    },
    { id: "H-F", what: "HTTPS through Bulkhead's TLS interception: CONNECT + TLS (Bulkhead CA) once per connection, then keep-alive requests, full pipeline", rates: [], saturate: true, scenario: () => tunnel("H-F", worker.info.port, `${HOSTS.github}:${httpsPort}`, worker.info.caPem), watch: () => ({ proxy: [worker.pid], postgres: pg(), upstream: up }) },
  );
  if (mitm) paths.push({ id: "H-mitm", what: `HTTPS through mitmdump ${mitm.version} (its own CA, upstream verified against the test CA), same client`, rates: [], saturate: true, scenario: () => tunnel("H-mitm", mitm.port, `127.0.0.1:${httpsPort}`, mitm.caPem), watch: () => ({ proxy: [mitm.pid], upstream: up }) });
  // The same two, paying the whole set-up on every request (what a client without a pool does).
  paths.push({ id: "H-F-newconn", what: "H-F with a new connection per request: TCP, CONNECT (token checked), full TLS handshake (no resumption), one request, close", rates: [], saturate: true, scenario: () => tunnel("H-F-newconn", worker.info.port, `${HOSTS.github}:${httpsPort}`, worker.info.caPem, true), watch: () => ({ proxy: [worker.pid], postgres: pg(), upstream: up }) });
  if (mitm) paths.push({ id: "H-mitm-newconn", what: `H-mitm with a new connection per request, like H-F-newconn (mitmdump opens its upstream connection per client connection)`, rates: [], saturate: true, scenario: () => tunnel("H-mitm-newconn", mitm.port, `127.0.0.1:${httpsPort}`, mitm.caPem, true), watch: () => ({ proxy: [mitm.pid], upstream: up }) });

  return {
    masterKey,
    databaseUrl: postgres.info.url,
    seeded,
    upstream,
    worker,
    workerNoAudit,
    workerNoMetrics,
    workerStrict,
    load,
    nginx,
    mitm,
    paths,
    skipped,
    probe: (t) => forward("probe", worker.info.port, HOSTS.rest, [t]),
  };
}
