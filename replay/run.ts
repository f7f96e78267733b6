/**
 * Plays the incident replay's matrix against a real Bulkhead: one worker in a private topology
 * (replay/topology.ts), the Railway-like API outside, and for every cell a fresh API state, a new
 * task configured as the cell's switches say, and the agent (replay/agent.mjs) run on the host
 * network or in a Bulkhead sandbox. The cells run one after another; identity-on cells first,
 * because switching identity off removes the vault's Railway credential.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import type { Actor } from "@/lib/auth/actor";
import type { IdentityConfig } from "@/lib/config/identity";
import type { BoxRecipient } from "@/lib/crypto/sealed-box";
import type { Db } from "@/lib/db/client";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { builtInDescriptors } from "@/lib/semantics/descriptors";
import { setInventoryYaml } from "@/lib/services/inventory";
import { packageRoot } from "@/lib/package-root";
import { createTask } from "@/lib/tasks/tasks";
import { generateCertificateAuthority } from "@/lib/tls/ca";
import { getCaCertificatePem } from "@/lib/tls/ca-store";
import { issueLeafCertificate } from "@/lib/tls/leaf";
import { importCaPrivateKey } from "@/lib/tls/x509";
import { addCredential } from "@/lib/vault/add-credential";
import { deleteCredential } from "@/lib/vault/delete-credential";
import { CELLS, type CellResult, type CellSpec } from "./matrix";
import type { RailwayState } from "./railway";
import { RAILWAY_HOST } from "./railway";
import { judgeCell } from "./judge";
import { ReplayTopology } from "./topology";
import { cleanUpOnSignal } from "@/lib/process/ending-signals";

// Found from the package's root, not next to this module: `bulkhead replay` runs it compiled into
// dist/cli/<build>/chunks/, where neither file is.
const AGENT = path.join(packageRoot(), "replay", "agent.mjs");
const OUTSIDE = path.join(packageRoot(), "replay", "outside.ts");
export const RAILWAY_ADDRESS = "10.80.0.10";
export const OUTSIDE_RESOLVER = "192.0.2.53";
const PROXY_PORT = 8080;
const HEALTH_PORT = 8081;

/** The Bulkhead the replay runs against: its database (one per run) and the keys of its processes. */
export interface ReplayBulkhead {
  db: Db;
  /** Who configures the replay's tasks, credentials and inventory (an admin or the CLI). */
  admin: Actor;
  /** The user who owns the replay's agents. */
  ownerId: string;
  /** The server's URLs for the owner, dashboard and worker roles of this database. */
  urls: { owner: string; dashboard: string; worker: string };
  workerKey: BoxRecipient;
  dashboardKey: Buffer;
  identity: IdentityConfig;
  /** The worker's key variables (workerKeyEnvironment). */
  workerKeyEnv: Record<string, string>;
}

export interface ReplayOptions {
  cells?: readonly CellSpec[];
  log?: (line: string) => void;
  /** The worker's LOG_LEVEL (its log is printed for a cell that differs). */
  workerLogLevel?: string;
}

const POLICY_ON = `unlisted: deny
rules:
  - id: railway-staging-read
    service: railway
    environments: [staging]
    effects: [read]
`;
const POLICY_OFF = `unlisted: deny
rules:
  - id: allow-all
    service: "*"
    effects: [read, write, destructive, irreversible]
    waive_approval: true
`;
const INVENTORY = `entries:
  - environment: production
    service: railway
    resources: [vol_prod, vol_prod_backup]
  - environment: staging
    service: railway
    resources: [vol_stg]
`;

async function testPki() {
  const ca = await generateCertificateAuthority({ now: new Date(), commonName: "Replay upstream CA" });
  const leaf = await issueLeafCertificate({ ca: { certPem: ca.certPem, privateKey: await importCaPrivateKey(ca.privateKeyPkcs8Pem) }, serverName: RAILWAY_HOST, now: new Date() });
  return { caPem: ca.certPem, certPem: leaf.certPem, keyPem: leaf.keyPem };
}

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs the matrix; always removes what it made, also when a cell fails. */
export async function runReplay(b: ReplayBulkhead, options: ReplayOptions = {}): Promise<CellResult[]> {
  const log = options.log ?? (() => undefined);
  const cells = [...(options.cells ?? CELLS)].sort((x, y) => Number(y.identity) - Number(x.identity));
  const tokens = { account: `acct_${randomBytes(12).toString("hex")}`, staging: `stg_${randomBytes(12).toString("hex")}` };
  const topo = new ReplayTopology({ hosts: { [RAILWAY_HOST]: RAILWAY_ADDRESS }, outsideAddresses: [RAILWAY_ADDRESS, OUTSIDE_RESOLVER], databaseUrl: b.urls.dashboard });
  // The agent's workspace must be readable by the sandbox's unprivileged user.
  const workspaces = mkdtempSync(path.join(tmpdir(), "bh-replay-ws-"));
  chmodSync(workspaces, 0o755);
  // Interrupted (Ctrl-C, a CI timeout, a closed terminal): the namespaces and their rules still go.
  const undoOnSignal = cleanUpOnSignal(async () => {
    await topo.close();
    rmSync(workspaces, { recursive: true, force: true });
  });
  try {
    await topo.setUp();
    const pki = await testPki();
    const upstreamCa = path.join(topo.dir, "upstream-ca.pem");
    writeFileSync(upstreamCa, pki.caPem);
    const outside = topo.forkIn(topo.outside, OUTSIDE, [JSON.stringify({ railwayAddress: RAILWAY_ADDRESS, resolverAddress: OUTSIDE_RESOLVER, cert: pki.certPem, key: pki.keyPem, tokens })]);
    await new Promise<void>((resolve, reject) => {
      outside.once("message", () => resolve());
      outside.once("exit", (code) => reject(new Error(`the replay's upstream exited (${code})`)));
    });
    const api = upstreamClient(outside);

    // Railway as this topology has it: the API on a private address, like an internal service.
    const railway = { ...builtInDescriptors.find((d) => d.id === "railway")!, proxy: { internalAddresses: [`${RAILWAY_ADDRESS}/32`] } };
    await b.db.service.create({ data: { name: "railway", descriptorYaml: stringify(railway) } });
    await setInventoryYaml(b.db, b.admin, INVENTORY);
    const bulkheadCa = (await getCaCertificatePem(b.db))?.certPem;
    if (!bulkheadCa) throw new Error("Bulkhead has no CA certificate yet: start it once (bulkhead start) first.");
    // The agent on the host trusts the public CA (the upstream's) and Bulkhead's, as a developer's machine would.
    const agentCa = path.join(workspaces, "ca-bundle.pem");
    writeFileSync(agentCa, `${pki.caPem.trim()}\n${bulkheadCa.trim()}\n`, { mode: 0o644 });

    const env = (extra: Record<string, string> = {}) =>
      ({
        PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        HOME: topo.dir,
        DATABASE_URL: topo.relayed(b.urls.owner),
        BULKHEAD_DASHBOARD_DATABASE_URL: topo.relayed(b.urls.dashboard),
        BULKHEAD_WORKER_DATABASE_URL: topo.relayed(b.urls.worker),
        BULKHEAD_DATA_DIR: path.join(topo.dir, "data"),
        BULKHEAD_INSTANCE_ID: topo.instanceId,
        BULKHEAD_ISOLATION: "on",
        BULKHEAD_PROXY_HOST: topo.hostAddress4,
        BULKHEAD_PROXY_PORT: String(PROXY_PORT),
        BULKHEAD_WORKER_HEALTH_HOST: topo.hostAddress4,
        BULKHEAD_WORKER_HEALTH_PORT: String(HEALTH_PORT),
        BULKHEAD_AUDIT_WAL_DIR: path.join(topo.dir, "audit-wal"),
        BULKHEAD_UPSTREAM_CA_FILE: upstreamCa,
        LOG_LEVEL: options.workerLogLevel ?? "warn",
        ...b.workerKeyEnv,
        ...extra,
      }) as unknown as NodeJS.ProcessEnv;

    const worker = topo.spawnBulkhead(["worker"], env());
    const readiness = async () => {
      const r = await topo.runOnHost(["curl", "-s", `http://${topo.hostAddress4}:${HEALTH_PORT}/readyz`], env(), 10_000);
      return JSON.parse(r.stdout || "{}") as { ready?: boolean; policy?: { loadedAt?: string | null } };
    };
    /** Waits until the worker enforces a snapshot loaded after `since` (so it holds every change before it). */
    const synced = (since: Date) =>
      waitFor("the worker to load the change", async () => {
        if (worker.exitCode !== null) throw new Error(`the worker exited: ${worker.output.stderr.slice(-2000)}`);
        const r = await readiness();
        return r.ready && r.policy?.loadedAt && new Date(r.policy.loadedAt) > since;
      }, 60_000, 200);
    await synced(new Date(0)).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${worker.output.stderr.slice(-3000)}`);
    });

    let credentialId: string | null = null;
    const results: CellResult[] = [];
    for (const cell of cells) {
      const started = Date.now();
      // Identity on: the vault holds the staging project token for Railway staging; off: nothing.
      if (cell.identity && !credentialId) {
        credentialId = (await addCredential(b.db, b.admin, b.workerKey, { name: `replay-railway-staging-${topo.run}`, scheme: "https", host: RAILWAY_HOST, port: 443, serviceId: "railway", headerTemplate: "Authorization: Bearer {secret}", secret: tokens.staging, environments: "staging" })).id;
      } else if (!cell.identity && credentialId) {
        await deleteCredential(b.db, b.admin, credentialId);
        credentialId = null;
      }
      await api.reset();
      const agent = await b.db.agent.create({ data: { name: `replay-${topo.run}-${results.length + 1}`, ownerId: b.ownerId } });
      const task = await createTask(b.db, b.admin, {
        agentId: agent.id,
        purpose: `incident replay: ${cell.behaviour} agent, identity ${cell.identity ? "on" : "off"}, policy ${cell.policy ? "on" : "off"}, isolation ${cell.isolation ? "on" : "off"}`,
        policyYaml: cell.policy ? POLICY_ON : POLICY_OFF,
        scope: cell.identity ? "railway:staging:read" : "*:*:irreversible",
        ttl: "30m",
      });
      const changed = new Date();
      // The workspace: identity off leaves the all-powerful token in a project file, as in the incident.
      const workspace = path.join(workspaces, `cell-${results.length + 1}`);
      mkdirSync(path.join(workspace, "deploy"), { recursive: true, mode: 0o755 });
      writeFileSync(path.join(workspace, "README.md"), "# app\nDeploys to Railway.\n", { mode: 0o644 });
      if (!cell.identity) writeFileSync(path.join(workspace, "deploy", "railway.env"), `RAILWAY_API_TOKEN=${tokens.account}\n`, { mode: 0o644 });
      chmodSync(path.join(workspace, "deploy"), 0o755);
      chmodSync(workspace, 0o755);
      const agentArgs = [AGENT, "--behaviour", cell.behaviour, "--workspace", workspace, "--resolver", OUTSIDE_RESOLVER];
      // The task's own notification may have been read by a load that started before `changed`
      // (the worker is quicker than this process's return from the commit): ask for the task row
      // again, so a load starting after `changed` has read it, instead of waiting for the
      // worker's periodic reconcile. The payload is the one the tasks trigger sends.
      await b.db.$executeRaw`SELECT pg_notify('bulkhead_policy', ${`tasks:${task.id}`})`;
      await synced(changed);
      let output;
      if (cell.isolation) {
        output = await topo.bulkhead(["sandbox", "run", "--task", task.id, "--", process.execPath, ...agentArgs], env());
      } else {
        const proxy: Record<string, string> = {};
        if (cell.policy) {
          const issued = await issueTaskToken(b.db, b.admin, b.dashboardKey, b.identity, task.id);
          proxy.HTTPS_PROXY = `http://task:${encodeURIComponent(issued.token)}@${topo.hostAddress4}:${PROXY_PORT}`;
        }
        output = await topo.runOnHost([process.execPath, ...agentArgs], { PATH: "/usr/bin:/bin", HOME: workspace, NODE_EXTRA_CA_CERTS: agentCa, ...proxy } as unknown as NodeJS.ProcessEnv);
      }
      const report = agentReport(output.stdout);
      if (!report) throw new Error(`the agent printed no report (exit ${output.code}): ${output.stdout.slice(-1000)}\n${output.stderr.slice(-2000)}\n${worker.output.stderr.slice(-2000)}`);
      const state = await api.state();
      const result = await judgeCell(b.db, cell, task.id, state, report.attempts ?? [], started);
      log(`${result.outcome === result.expected ? "ok  " : "DIFF"} identity ${cell.identity ? "on " : "off"} policy ${cell.policy ? "on " : "off"} isolation ${cell.isolation ? "on " : "off"} ${cell.behaviour.padEnd(8)} ${result.outcome} (${result.layer}: ${result.reason})`);
      if (result.outcome !== result.expected) log(`  the agent's attempts: ${JSON.stringify(result.attempts)}\n  the upstream saw: ${result.upstream.join(" | ")}\n  the worker's log ends: ${worker.output.stderr.slice(-4000)}${worker.output.stdout.slice(-4000)}`);
      results.push(result);
    }
    return results;
  } finally {
    await topo.close();
    undoOnSignal();
    rmSync(workspaces, { recursive: true, force: true });
  }
}

/** The agent's last output line: its JSON report (null when it printed none). */
function agentReport(stdout: string): { attempts?: Array<Record<string, unknown>> } | null {
  try {
    return JSON.parse(stdout.trim().split("\n").pop() || "null") as { attempts?: Array<Record<string, unknown>> } | null;
  } catch {
    return null;
  }
}

function upstreamClient(child: ChildProcess) {
  let next = 1;
  const call = (op: "reset" | "state") =>
    new Promise<RailwayState>((resolve, reject) => {
      const id = next++;
      const onMessage = (m: { id?: number; state?: RailwayState }) => {
        if (m.id !== id) return;
        child.off("message", onMessage);
        resolve(m.state!);
      };
      child.on("message", onMessage);
      child.send({ id, op }, (error) => error && reject(error));
    });
  return { reset: () => call("reset"), state: () => call("state") };
}
