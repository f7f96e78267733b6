/**
 * `bulkhead sandbox run | verify | cleanup`: what needs the launcher (network namespaces, the
 * fence, the self-test). Loaded only for those; `sandbox list` and `stop` (./sandbox.ts) never
 * load the isolation code.
 */
import path from "node:path";
import { loadCommonConfig } from "@/lib/config/common";
import { loadIsolationConfig, sandboxBaseEnvironment, type IsolationConfig } from "@/lib/config/isolation";
import { loadWorkerConfig } from "@/lib/config/worker";
import type { Db } from "@/lib/db/client";
import { createAgent } from "@/lib/agents/agents";
import { DENY_ALL_POLICY, createTask, endTask } from "@/lib/tasks/tasks";
import { AlreadyDoneError } from "@/lib/errors/app-error";
import { getCaCertificatePem } from "@/lib/tls/ca-store";
import { hasNetAdmin, IsolationError, requireNetAdmin } from "@/proxy-worker/isolation/exec";
import { liveLockHolder } from "@/proxy-worker/audit/wal/segments";
import { cleanupLeftovers, launchSandbox, removeFenceWithoutSandboxes, resourceLimitLayout, teardownSandbox, type LaunchedSandbox } from "@/proxy-worker/isolation/launcher";
import { dataFolderOwner } from "@/cli/runtime/data-folder-lock";
import { runSession, SANDBOX_SCRATCH } from "@/proxy-worker/isolation/session";
import { applyOverrides, formatBytes, LimitError, type SandboxLimits } from "@/lib/sandboxes/limits";
import { auditVerify, formatTable, hostAddresses, runProbe, type Canary, type VerifyResult } from "@/proxy-worker/isolation/verify";
import { uuidSchema } from "@/lib/agents/ids";
import { parseFlags, requireFlag } from "../args";
import { CliError, type CliContext } from "../context";
import { CLI_ACTOR, withCliDatabase } from "../database";
import { ownerFlagError } from "../errors";
import { SANDBOX_USAGE as USAGE } from "./sandbox";

const canaryFlags = {
  "canary-v4": { type: "string" },
  "canary-v6": { type: "string" },
  "canary-ula": { type: "string" },
  "canary-port": { type: "string" },
  "canary-udp-port": { type: "string" },
  "canary-resolver": { type: "string" },
  "bulkhead-address": { type: "string", multiple: true },
} as const;

/** The limits a run may override (lib/sandboxes/limits.ts); the environment gives the defaults. */
const limitFlags = {
  "home-size": { type: "string" },
  "scratch-size": { type: "string" },
  memory: { type: "string" },
  pids: { type: "string" },
  "no-resource-limits": { type: "boolean" },
} as const;

/** The configured limits with the run's flags; bad input is refused (exit 2) before anything is made. */
function runLimits(config: IsolationConfig, values: { "home-size"?: string; "scratch-size"?: string; memory?: string; pids?: string; "no-resource-limits"?: boolean }): SandboxLimits {
  try {
    return applyOverrides(config.limits, { homeSize: values["home-size"], scratchSize: values["scratch-size"], memory: values.memory, pids: values.pids, noResourceLimits: values["no-resource-limits"] });
  } catch (error) {
    if (error instanceof LimitError) throw new CliError(error.message, 2);
    throw error;
  }
}

/** What `verify` says about the limits in force (also in its JSON). */
function limitsReport(sandbox: LaunchedSandbox): string {
  const l = sandbox.limits;
  const resources = l.memoryBytes === null || l.pids === null ? "memory and processes: NOT LIMITED (turned off with --no-resource-limits or BULKHEAD_SANDBOX_RESOURCE_LIMITS=off)" : `memory: ${formatBytes(l.memoryBytes)}, processes: ${l.pids} (${sandbox.enforcedBy}, ${sandbox.cgroup?.memoryDir ?? ""})`;
  return `limits in force: home tmpfs ${formatBytes(l.homeBytes)}, scratch tmpfs ${formatBytes(l.scratchBytes)} each (${SANDBOX_SCRATCH.join(", ")}); ${resources}`;
}

type CanaryValues = { [K in keyof typeof canaryFlags]?: K extends "bulkhead-address" ? string[] : string };

/** `bulkhead start`'s cleanup step: this instance's leftovers, when isolation is possible here. */
export async function removeSandboxLeftovers(db: Db, config: IsolationConfig): Promise<string[]> {
  if (config.mode === "off" || process.platform !== "linux" || !hasNetAdmin()) return [];
  const removed = await cleanupLeftovers(db, config, CLI_ACTOR);
  return [...removed, ...(await removeUnusedFence(config))];
}

function isolationConfig(): IsolationConfig {
  return loadIsolationConfig(loadCommonConfig().dataDir);
}

/**
 * Rejects before anything is opened when the launcher cannot work (not root, not Linux, or no
 * cgroup for the memory and process limits when they are on).
 */
function preflight(what: string, limits?: SandboxLimits): void {
  try {
    requireNetAdmin(what);
    if (limits) resourceLimitLayout(limits);
  } catch (error) {
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
}

/** Waits (bounded) until the local worker's snapshot knows the sandbox, so its first connection is not refused. */
async function waitForWorker(ctx: CliContext, sandbox: LaunchedSandbox): Promise<void> {
  const worker = loadWorkerConfig();
  const host = worker.healthHost.includes(":") ? `[${worker.healthHost}]` : worker.healthHost;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const known = await Promise.all(
      [sandbox.addresses.v4, sandbox.addresses.v6].map((a) =>
        fetch(`http://${host}:${worker.healthPort}/sandboxes/known?address=${encodeURIComponent(a)}`, { signal: AbortSignal.timeout(1000) }).then(
          (r) => r.status === 200,
          // A worker too busy to answer within the second is asked again; only one that is not
          // there (the connection refused) is given up on.
          (error: unknown) => (error instanceof Error && error.name === "TimeoutError" ? false : null),
        ),
      ),
    );
    if (known.every((k) => k === true)) return;
    if (known.some((k) => k === null)) {
      ctx.stderr(`warning: no proxy worker answers on ${host}:${worker.healthPort}; the sandbox's connections fail closed until one runs.`);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  ctx.stderr("warning: the proxy worker has not seen the new sandbox yet; its first connections may be refused.");
}

/**
 * Waits (at most `ms`) until the local worker holds no open connection of the sandbox: when the
 * task ends, the worker closes them on its own kill switch, and the network must still be there
 * for that close to reach whatever the agent left open.
 */
async function drainWorker(sandbox: LaunchedSandbox, ms = 1500): Promise<void> {
  const worker = loadWorkerConfig();
  const host = worker.healthHost.includes(":") ? `[${worker.healthHost}]` : worker.healthHost;
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const open = await Promise.all(
      [sandbox.addresses.v4, sandbox.addresses.v6].map((a) =>
        fetch(`http://${host}:${worker.healthPort}/sandboxes/connections?address=${encodeURIComponent(a)}`, { signal: AbortSignal.timeout(500) })
          .then((r) => r.json() as Promise<{ connections?: number }>)
          .then((b) => b.connections ?? 0, () => 0),
      ),
    );
    if (open.every((n) => n === 0)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
}

function verifyTargets(values: CanaryValues, config: IsolationConfig, addresses: string[]) {
  const worker = loadWorkerConfig();
  const common = loadCommonConfig();
  const canary: Canary = {};
  if (values["canary-v4"]) canary.v4 = values["canary-v4"];
  if (values["canary-v6"]) canary.v6 = values["canary-v6"];
  if (values["canary-ula"]) canary.ula = values["canary-ula"];
  if (values["canary-port"]) canary.port = canary.bannerPort = Number(values["canary-port"]);
  if (values["canary-udp-port"]) canary.udpPort = Number(values["canary-udp-port"]);
  if (values["canary-resolver"]) canary.resolver = values["canary-resolver"];
  let databasePort = common.embeddedPgPort;
  if (common.databaseUrl) {
    try {
      databasePort = Number(new URL(common.databaseUrl).port || 5432);
    } catch {
      // a socket URL: the database has no TCP port to probe
    }
  }
  return {
    canary,
    bulkheadAddresses: [...new Set([config.gatewayV4, config.gatewayV6, ...addresses])],
    bulkheadPorts: { dashboard: worker.appPort, database: databasePort, health: worker.healthPort, proxy: worker.proxyPort },
  };
}

async function verifyIn(ctx: CliContext, db: Db, config: IsolationConfig, sandbox: LaunchedSandbox, values: CanaryValues): Promise<VerifyResult[]> {
  const addresses = values["bulkhead-address"] ?? (await hostAddresses());
  const results = await runProbe(config, sandbox, verifyTargets(values, config, addresses));
  await auditVerify(db, CLI_ACTOR, sandbox, results);
  const limits = { ...sandbox.limits, enforcedBy: sandbox.enforcedBy, cgroup: sandbox.cgroup?.memoryDir ?? null };
  if (ctx.json) ctx.stdout(JSON.stringify({ sandboxId: sandbox.id, passed: results.every((r) => !r.escaped), results, limits }));
  else ctx.stdout(`${formatTable(results)}\n${limitsReport(sandbox)}`);
  return results;
}

class StoppedBeforeCommand extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** `work`, unless a signal comes first (then StoppedBeforeCommand). */
async function beforeCommand<T>(work: Promise<T>, stop: Promise<string>): Promise<T> {
  const outcome = await Promise.race([work.then((value) => ({ value })), stop.then((reason) => ({ reason }))]);
  if ("reason" in outcome) throw new StoppedBeforeCommand(outcome.reason);
  return outcome.value;
}

function signalled(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => () => resolve(`the launcher received ${signal}`);
    process.once("SIGINT", on("SIGINT"));
    process.once("SIGTERM", on("SIGTERM"));
    process.once("SIGHUP", on("SIGHUP"));
  });
}

export async function runCommand(args: string[], ctx: CliContext): Promise<number> {
  const split = args.indexOf("--");
  if (split < 0 || split === args.length - 1) throw new CliError(USAGE, 2);
  const command = args.slice(split + 1);
  const { values } = parseFlags(args.slice(0, split), { task: { type: "string" }, verify: { type: "boolean" }, env: { type: "string", multiple: true }, cwd: { type: "string" }, ...limitFlags, ...canaryFlags });
  const taskId = taskIdOf(requireFlag(values.task, "task"));
  const config = isolationConfig();
  const limits = runLimits(config, values);
  const env = sandboxBaseEnvironment();
  for (const pair of values.env ?? []) {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new CliError(`--env ${pair}: expected NAME=VALUE`, 2);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  preflight("bulkhead sandbox run", limits);
  return withCliDatabase(ctx, async (db, url) => {
    await cleanupLeftovers(db, config, CLI_ACTOR);
    const caPem = (await getCaCertificatePem(db))?.certPem;
    if (!caPem) throw new CliError("no interception CA yet: start Bulkhead once (npm start) or run `bulkhead ca cert`");
    try {
      return await runSandboxed(ctx, db, url, config, { taskId, caPem, command, env, cwd: values.cwd, verify: values.verify ? values : null, limits });
    } finally {
      await removeFenceAfterSandbox(ctx, config);
    }
  });
}

/**
 * The last sandbox of an instance whose worker is not running (a `sandbox run` with no Bulkhead
 * started) leaves no fence behind: the worker removes its fence when it stops, and here nobody
 * else would. A sandbox of the instance still running, or any Bulkhead process of the data folder,
 * keeps it (`removeUnusedFence`).
 */
async function removeFenceAfterSandbox(ctx: CliContext, config: IsolationConfig): Promise<void> {
  try {
    await removeUnusedFence(config);
  } catch (error) {
    ctx.stderr(`could not remove this instance's unused fence (bulkhead sandbox cleanup removes it later): ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** --task as given, refused before anything is set up when it is not a task id at all. */
function taskIdOf(value: string): string {
  if (!uuidSchema.safeParse(value).success) throw new CliError(`--task must be a task's id (a uuid; bulkhead task list shows them), not "${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`, 2);
  return value;
}

/** Launches the sandbox, self-tests it when asked, runs the command in it and tears it down. */
async function runSandboxed(
  ctx: CliContext,
  db: Db,
  url: string,
  config: IsolationConfig,
  o: { taskId: string; caPem: string; command: string[]; env: Record<string, string>; cwd: string | undefined; verify: CanaryValues | null; limits: SandboxLimits },
): Promise<number> {
  const sandbox = await launchSandbox(db, config, CLI_ACTOR, o.taskId, o.caPem, o.limits).catch((error: unknown) => {
    throw error instanceof IsolationError ? new CliError(error.message) : error;
  });
  // Listened for from the moment the sandbox exists: Ctrl-C while it waits for the worker or runs
  // its self-test left it behind (namespace, cgroup, its row live) until the next cleanup.
  const stop = signalled();
  try {
    await beforeCommand(waitForWorker(ctx, sandbox), stop);
    ctx.stderr(`sandbox ${sandbox.names.netns} (${sandbox.id}) ready at ${sandbox.addresses.v4} and ${sandbox.addresses.v6} for task ${o.taskId}`);
    ctx.stderr(limitsReport(sandbox));
    if (o.verify) {
      const results = await beforeCommand(verifyIn(ctx, db, config, sandbox, o.verify), stop);
      if (results.some((r) => r.escaped)) {
        await teardownSandbox(db, CLI_ACTOR, sandbox, "the self-test found an escape; the command was not started");
        throw new CliError("the sandbox self-test failed: an escape worked, so the command was not started (see the table above)", 3);
      }
    }
  } catch (error) {
    const why = error instanceof StoppedBeforeCommand ? `${error.reason} before the command started` : "the launcher failed before the command started";
    await teardownSandbox(db, CLI_ACTOR, sandbox, why).catch(() => undefined);
    if (error instanceof StoppedBeforeCommand) throw new CliError(`sandbox ${sandbox.names.netns} torn down: ${why}`, 130);
    throw error;
  }
  const result = await runSession({ db, databaseUrl: url, config, actor: CLI_ACTOR, sandbox, command: o.command, env: o.env, cwd: o.cwd, stdio: "inherit", stop, drain: () => drainWorker(sandbox) });
  ctx.stderr(`sandbox ${sandbox.names.netns} torn down: ${result.reason}`);
  return result.exitCode;
}

export async function verifyCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(args, { task: { type: "string" }, owner: { type: "string" }, ...limitFlags, ...canaryFlags });
  if (values.task !== undefined) taskIdOf(values.task);
  if (values.task && values.owner) throw new CliError("--owner names the owner of the self-test's own agent; with --task the task's agent is used: give one of them", 2);
  const config = isolationConfig();
  const limits = runLimits(config, values);
  preflight("bulkhead sandbox verify", limits);
  return withCliDatabase(ctx, async (db) => {
    await cleanupLeftovers(db, config, CLI_ACTOR);
    let taskId = values.task;
    let temporary = false;
    if (!taskId) {
      // A throwaway deny-all task: the self-test needs a sandbox bound to something.
      const agent =
        (await db.agent.findUnique({ where: { name: "bulkhead-self-test" }, select: { id: true } })) ??
        (await createAgent(db, CLI_ACTOR, { name: "bulkhead-self-test", ownerEmail: values.owner, description: "Runs `bulkhead sandbox verify`" }).catch((error: unknown) => {
          throw ownerFlagError(error, "(The self-test registers that agent, bulkhead-self-test, for its throwaway deny-all task; --task ID runs it in a task of yours instead.)");
        }));
      taskId = (await createTask(db, CLI_ACTOR, { agentId: agent.id, purpose: "sandbox self-test", policyYaml: DENY_ALL_POLICY, ttl: "10m" })).id;
      temporary = true;
    }
    const caPem = (await getCaCertificatePem(db))?.certPem ?? "";
    const sandbox = await launchSandbox(db, config, CLI_ACTOR, taskId, caPem, limits).catch((error: unknown) => {
      throw error instanceof IsolationError ? new CliError(error.message) : error;
    });
    // A signal during the self-test ends it, and the sandbox is still torn down (finally below).
    const stop = signalled();
    try {
      const stopped = (error: unknown): never => {
        throw error instanceof StoppedBeforeCommand ? new CliError(`the self-test was stopped: ${error.reason}`, 130) : error;
      };
      await beforeCommand(waitForWorker(ctx, sandbox), stop).catch(stopped);
      const results = await beforeCommand(verifyIn(ctx, db, config, sandbox, values), stop).catch(stopped);
      const escaped = results.filter((r) => r.escaped).length;
      const probeFailed = results.some((r) => r.escape === "self-test probe" && r.escaped);
      if (!ctx.json) ctx.stdout(probeFailed ? "FAILED: the self-test probe did not complete (see the table above)." : escaped ? `FAILED: ${escaped} escape(s) worked.` : `OK: all ${results.length} escapes were blocked.`);
      return escaped ? 3 : 0;
    } finally {
      await teardownSandbox(db, CLI_ACTOR, sandbox, "self-test finished");
      // Already over (its time ran out, or someone ended it meanwhile): nothing left to end.
      if (temporary) await endTask(db, CLI_ACTOR, taskId, "sandbox self-test finished").catch((error: unknown) => {
        if (!(error instanceof AlreadyDoneError)) throw error;
      });
      await removeFenceAfterSandbox(ctx, config);
    }
  });
}

/**
 * This instance's fence (and the gateway addresses, once no Bulkhead fence is left) when nothing
 * needs it: no sandbox of this instance is left, and no Bulkhead process of this data folder runs,
 * neither a `bulkhead start` (the folder's lock; `start` itself calls this before it forks its
 * worker) nor a proxy worker (its audit log's lock): a running worker keeps its fence, and the
 * addresses its sandbox listener is bound to, with no sandbox. A worker that was killed leaves
 * both behind; so did a start interrupted while its worker was starting. Removing the fence never
 * opens anything: a new sandbox installs it again before its namespace exists.
 */
async function removeUnusedFence(config: IsolationConfig): Promise<string[]> {
  const common = loadCommonConfig();
  const owner = dataFolderOwner(common.dataDir);
  if (owner && owner.pid !== process.pid) return [];
  if (liveLockHolder(loadWorkerConfig().auditWalDir ?? path.join(common.dataDir, "audit-wal")) !== null) return [];
  return removeFenceWithoutSandboxes(config);
}

/** `sandbox cleanup`: removes what an earlier launcher on this host left (root). */
export async function cleanupCommand(args: string[], ctx: CliContext): Promise<number> {
  parseFlags(args, {});
  preflight("bulkhead sandbox cleanup");
  const config = isolationConfig();
  const removed = await withCliDatabase(ctx, (db) => cleanupLeftovers(db, config, CLI_ACTOR));
  removed.push(...(await removeUnusedFence(config)));
  ctx.stdout(ctx.json ? JSON.stringify({ removed }) : removed.length ? `Removed leftovers: ${removed.join(", ")}` : "Nothing to clean up.");
  return 0;
}
