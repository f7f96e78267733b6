/**
 * Layer 3 benchmark (part of `npm run bench`; Linux, root): the same requests through a sandbox's
 * transparent path and through the explicit path, on one worker, one upstream, in one run,
 * interleaved A B A B. Three measures, medians over repeats:
 *   - sequential keep-alive requests (plain HTTP): p50/p99 latency and the ratio transparent/explicit;
 *   - an open loop at 1,000 requests/s for 3 s over up to 32 keep-alive connections (opened as the
 *     load needs them during half a second of the same load first), latency from each request's
 *     intended send time (the bar's measure: the transparent p50 at 1k rps);
 *   - a fresh connection per request: TCP + TLS through interception + one request (CONNECT first on
 *     the explicit path).
 * Runs in namespaces it makes (the test topology): the worker and upstreams never touch the
 * machine's own network. Writes bench/results/sandbox.json and prints a Markdown table.
 * Knobs: BENCH_SANDBOX_REQUESTS (default 2000), BENCH_SANDBOX_FRESH (200), BENCH_REPEATS (3).
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { generateMasterKey, parseMasterKey } from "@/lib/crypto/envelope";
import { establishProcessKeys } from "@/lib/keys/establish";
import { workerKeyEnvironment } from "@/lib/keys/process-keys";
import { createPrismaClient } from "@/lib/db/client";
import { startEmbeddedDatabase } from "@/lib/db/embedded";
import { migrate } from "@/lib/db/migrate";
import { ensureSigningKey } from "@/lib/identity/key-store";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { createTask } from "@/lib/tasks/tasks";
import { ensureCertificateAuthority, getCaCertificatePem } from "@/lib/tls/ca-store";
import { serveHttp, sh, Topology } from "@/tests/support/isolation/topology";
import { createTestPki } from "@/tests/support/upstreams";
import { percentiles, round } from "./support/stats";

const int = (name: string, fallback: number) => (Number(process.env[name]) > 0 ? Number(process.env[name]) : fallback);
const REQUESTS = int("BENCH_SANDBOX_REQUESTS", 2000);
const FRESH = int("BENCH_SANDBOX_FRESH", 200);
const REPEATS = int("BENCH_REPEATS", 3);
const PLAIN = "10.79.0.11";
const TLSHOST = "10.79.0.12";

interface Sample {
  keepAlive: number[];
  openLoop: number[];
  newConnection: number[];
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log("sandbox benchmark skipped: it needs root (network namespaces)");
    return;
  }
  const dir = mkdtempSync(path.join(tmpdir(), "bh-sandbox-bench-"));
  // What the sandboxed client reads (its script, the CAs) lives outside /tmp: a sandbox gets an
  // empty /tmp of its own (docs/isolation.md), where a file the host put in its /tmp is not.
  const resultsDir = path.join(process.cwd(), "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const files = mkdtempSync(path.join(resultsDir, "sandbox-files-"));
  chmodSync(dir, 0o755);
  const pg = await startEmbeddedDatabase({ dataDir: path.join(dir, "pg"), port: 20000 + Math.floor(Math.random() * 20000), database: "bench" });
  let topo: Topology | null = null;
  try {
    await migrate(pg.url);
    const db = createPrismaClient(pg.url, 2);
    const masterText = generateMasterKey();
    const masterKey = parseMasterKey(masterText);
    const { keys } = await establishProcessKeys(db, masterKey);
    await ensureSigningKey(db, keys.dashboardKey);
    await ensureCertificateAuthority(db, keys.workerKey);
    const user = await db.user.create({ data: { email: `bench-${Date.now()}@example.test`, role: "admin" } });
    const actor = { kind: "user" as const, userId: user.id, email: user.email, role: "admin" as const, authenticatedAt: Date.now() };
    const internal = { internalAddresses: ["10.79.0.0/24"] };
    for (const s of [
      { id: "plainbench", hosts: ["plain.bench.test"], scheme: "http", ports: [80], protocol: "rest", proxy: internal },
      { id: "tlsbench", hosts: ["tls.bench.test"], scheme: "https", ports: [443], protocol: "rest", proxy: internal },
    ]) {
      await db.service.create({ data: { name: s.id, descriptorYaml: stringify(s) } });
    }
    const agent = await db.agent.create({ data: { name: `bench-${Date.now()}`, ownerId: user.id } });
    const task = await createTask(db, actor, { agentId: agent.id, purpose: "sandbox benchmark", policyYaml: "unlisted: deny\nrules:\n  - service: plainbench\n    effects: [read]\n  - service: tlsbench\n    effects: [read]\n", ttl: "2h" });
    const { token } = await issueTaskToken(db, actor, keys.dashboardKey, { issuer: "bulkhead", audience: "bulkhead-proxy" }, task.id);
    const caPem = (await getCaCertificatePem(db))!.certPem;
    await db.$disconnect();

    topo = new Topology({ database: { ownerUrl: pg.url, url: pg.url, workerUrl: pg.url }, hosts: { "plain.bench.test": PLAIN, "tls.bench.test": TLSHOST }, outsideAddresses: [PLAIN, TLSHOST] });
    await topo.setUp();
    const outside = await topo.helper(topo.outside);
    const pki = await createTestPki();
    const cert = await pki.serverCert("tls.bench.test");
    const fixed = (_hit: unknown, res: import("node:http").ServerResponse) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
      res.end("ok");
    };
    await serveHttp(outside, PLAIN, 80, { respond: fixed });
    await serveHttp(outside, TLSHOST, 443, { tls: { cert: cert.certPem, key: cert.keyPem }, respond: fixed });
    chmodSync(files, 0o755);
    writeFileSync(path.join(files, "upstream-ca.pem"), pki.caPem);
    writeFileSync(path.join(files, "bulkhead-ca.pem"), caPem);
    const client = path.join(files, "client.mjs");
    copyFileSync(new URL("./sandbox-client.mjs", import.meta.url), client);
    chmodSync(client, 0o644);
    // The per-task and per-agent request rates are lifted (as in the deployment bench): the open
    // loop runs at 1,000 requests/s, the task's default limit, and measures latency, not limits.
    const env = topo.env({ ...workerKeyEnvironment(keys), BULKHEAD_DATABASE_SINGLE_ROLE: "true", BULKHEAD_UPSTREAM_CA_FILE: path.join(files, "upstream-ca.pem"), LOG_LEVEL: "error", BULKHEAD_TASK_REQUESTS_PER_SECOND: "1000000", BULKHEAD_AGENT_REQUESTS_PER_SECOND: "1000000" });
    const worker = topo.spawnBulkhead(["worker"], env);
    const host = await topo.helper(topo.host);
    for (let i = 0; ; i++) {
      if (worker.exitCode !== null) throw new Error(`worker exited: ${worker.output.stderr}`);
      const ready = await host.connect(topo.hostAddress4, 8081).then(
        () => true,
        () => false,
      );
      if (ready) break;
      if (i > 600) throw new Error("the worker did not start");
      await new Promise((r) => setTimeout(r, 200));
    }

    const parse = (run: { stdout: string; stderr: string }): Sample => {
      const line = run.stdout.trim().split("\n").pop() ?? "";
      let out: (Sample & { error?: string }) | null = null;
      try {
        out = JSON.parse(line) as Sample & { error?: string };
      } catch {
        out = null;
      }
      if (!out || out.error || !out.keepAlive) throw new Error(`client failed: ${line.slice(0, 500) || "(no output)"}; stderr: ${run.stderr.slice(-1500)}`);
      return out;
    };
    const samples: Record<"explicit" | "transparent", Sample[]> = { explicit: [], transparent: [] };
    for (let r = 0; r < REPEATS; r++) {
      const explicit = await sh("ip", ["netns", "exec", topo.host, process.execPath, client, "explicit", String(REQUESTS), String(FRESH), topo.hostAddress4, "8080", token, path.join(files, "bulkhead-ca.pem")], { timeoutMs: 600_000 });
      samples.explicit.push(parse(explicit));
      const transparent = await topo.bulkhead(["sandbox", "run", "--task", task.id, "--", process.execPath, client, "transparent", String(REQUESTS), String(FRESH)], env, 600_000);
      samples.transparent.push(parse(transparent));
      console.log(`  repeat ${r + 1}/${REPEATS} done`);
    }
    worker.kill("SIGTERM");

    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const summary = (key: keyof Sample, path: "explicit" | "transparent") => {
      const per = samples[path].map((s) => percentiles(s[key]));
      return { p50: median(per.map((p) => p.p50)), p99: median(per.map((p) => p.p99)) };
    };
    const rows = (["keepAlive", "openLoop", "newConnection"] as const).map((key) => {
      const e = summary(key, "explicit");
      const t = summary(key, "transparent");
      return { measure: key, explicit: e, transparent: t, ratioP50: round(t.p50 / e.p50, 2), ratioP99: round(t.p99 / e.p99, 2) };
    });
    const MEASURES = { keepAlive: `keep-alive HTTP, ${REQUESTS} sequential requests`, openLoop: "keep-alive HTTP, open loop at 1,000 rps for 3 s (32 connections)", newConnection: `new TCP + TLS (interception) + request, ${FRESH} connections` };
    const table = [
      `| measure (µs, medians of ${REPEATS} repeats) | explicit p50 | sandbox p50 | ratio p50 | explicit p99 | sandbox p99 | ratio p99 |`,
      "|---|---|---|---|---|---|---|",
      ...rows.map((r) => `| ${MEASURES[r.measure]} | ${round(r.explicit.p50)} | ${round(r.transparent.p50)} | ${r.ratioP50}x | ${round(r.explicit.p99)} | ${round(r.transparent.p99)} | ${r.ratioP99}x |`),
    ].join("\n");
    console.log(`\n${table}\n`);
    mkdirSync(path.join(process.cwd(), "bench", "results"), { recursive: true });
    writeFileSync(path.join(process.cwd(), "bench", "results", "sandbox.json"), JSON.stringify({ requests: REQUESTS, fresh: FRESH, repeats: REPEATS, rows, samples: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map((s) => ({ keepAlive: percentiles(s.keepAlive), openLoop: percentiles(s.openLoop), newConnection: percentiles(s.newConnection) }))])) }, null, 2));
  } finally {
    await topo?.close();
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(files, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
