/**
 * The bench load generator. Open loop: requests are sent on a fixed schedule whatever the server
 * does, and each latency is measured from the request's INTENDED send time (no coordinated
 * omission). A worker thread paces the schedule with sub-millisecond sleeps (libuv timers only
 * tick in whole milliseconds) and wakes the sender; the sender's own lag behind the schedule is
 * reported too, so the generator's jitter is visible. Closed loop: N keep-alive connections, each
 * sending its next request as soon as the previous answer is read (saturation throughput).
 * A scenario with `newConnectionPerRequest` pays the whole set-up on every request, in both modes:
 * a new TCP connection (for a tunnel also CONNECT and a full TLS handshake, no session
 * resumption), one request with `Connection: close`, the answer read, the connection closed.
 *
 * Used in-process by the orchestrator (probes) and as its own child process for load runs
 * (`serve` below), so the generator never shares an event loop with what it measures.
 */
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { Pool } from "undici";
import { announce, serve } from "./support/ipc";
import { tunnelConnector } from "./support/tunnel";
import { coreBusy, cpuTimes, percentiles, processCpuSeconds, processTree, round, type Percentiles } from "./support/stats";

export type Target =
  /** Origin-form requests straight to a server. */
  | { kind: "direct"; origin: string; path: string }
  /** Absolute-form requests to an explicit HTTP proxy (how agents send plain HTTP through Bulkhead). */
  | { kind: "forward"; proxy: string; url: string }
  /** CONNECT `connect` on the proxy, then TLS (SNI `servername`, trusting `caPem`), then requests to `origin`. */
  | { kind: "tunnel"; proxy: string; connect: string; origin: string; servername: string; caPem: string; path: string };

export interface Scenario {
  name: string;
  target: Target;
  headers?: Record<string, string>;
  /** Sent as `Proxy-Authorization: Bearer <token>`; with several, request i uses tokens[i % n]. */
  tokens?: string[];
  /**
   * Each request on a connection of its own (undici's `reset`: `Connection: close`, the socket
   * destroyed after the answer), so the pool opens the next one through the same connector.
   */
  newConnectionPerRequest?: boolean;
}

/** Processes whose CPU use is reported: fixed pids (summed), or a process tree read at both ends. */
export type Watch = Record<string, number[] | { tree: number }>;

export interface OpenLoopSpec {
  scenario: Scenario;
  rate: number;
  durationMs: number;
  warmupMs: number;
  connections: number;
  watch?: Watch;
}

export interface ClosedLoopSpec {
  scenario: Scenario;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  watch?: Watch;
}

export interface LoadResult {
  scenario: string;
  mode: "open" | "closed";
  rate: number | null;
  concurrency: number | null;
  measuredSeconds: number;
  sent: number;
  ok: number;
  errors: number;
  errorKinds: Record<string, number>;
  achievedRps: number;
  latencyUs: Percentiles;
  /** Open loop: how late (negative: early) the generator sent each request relative to its schedule. */
  sendLagUs: Percentiles | null;
  /** Busy % per core, and % of one core per watched process, over the measured window. */
  cpu: { cores: Record<string, number>; processes: Record<string, number> };
  /**
   * Connections the client opened per request sent, over the whole run (warm-up included: a
   * window would cut handshakes from their requests): 1 for a new-connection scenario (the check
   * that it really was one), ~0 for keep-alive.
   */
  connectionsPerRequest: number;
  /**
   * Open loop: the measured window's seconds (counted from the first measured request's intended
   * send time) whose slowest request took longest, worst first (at most SLOW_SECONDS_KEPT), and
   * how many seconds had a request over 100 ms: where a long run's tail sits in time.
   */
  slowSeconds?: { second: number; maxMs: number; p99Ms: number; over100ms: number; unfinished: number }[];
  secondsOver100ms?: number;
}

const STRAGGLER_TIMEOUT_MS = 15_000;
const now = () => Number(process.hrtime.bigint());

/** A client for the scenario (keep-alive unless it asks otherwise), how to send its request number i, and how many connections it has opened. */
export function clientFor(scenario: Scenario, connections: number): { pool: Pool; send(i: number): Promise<number>; opened(): number } {
  const t = scenario.target;
  const options = { connections, pipelining: 1, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, headersTimeout: 15_000, bodyTimeout: 15_000 };
  const tokens = scenario.tokens ?? [];
  const single = tokens.length === 1 ? tokens[0] : undefined;
  let pool: Pool;
  let path: string;
  const base: Record<string, string> = { ...scenario.headers };
  if (t.kind === "direct") {
    pool = new Pool(t.origin, options);
    path = t.path;
  } else if (t.kind === "forward") {
    pool = new Pool(t.proxy, options);
    path = t.url;
    base.host = new URL(t.url).host;
    if (single) base["proxy-authorization"] = `Bearer ${single}`;
  } else {
    pool = new Pool(t.origin, { ...options, connect: tunnelConnector(t, tokens[0]) });
    path = t.path;
  }
  const perRequestToken = t.kind === "forward" && tokens.length > 1;
  const reset = scenario.newConnectionPerRequest === true;
  let opened = 0;
  pool.on("connect", () => opened++);
  return {
    pool,
    opened: () => opened,
    async send(i) {
      const headers = perRequestToken ? { ...base, "proxy-authorization": `Bearer ${tokens[i % tokens.length]}` } : base;
      const res = await pool.request({ method: "GET", path, headers, reset });
      await res.body.text();
      return res.statusCode;
    },
  };
}

function errorKind(error: unknown): string {
  const e = error as { code?: string; name?: string };
  return e?.code ?? e?.name ?? "error";
}

function cpuWindow(watch: Watch = {}) {
  const cores = cpuTimes();
  const pidsOf = (w: Watch[string]) => (Array.isArray(w) ? w : processTree(w.tree));
  const readAll = (pids: number[]) => new Map(pids.map((pid) => [pid, processCpuSeconds(pid)]));
  const before = Object.fromEntries(Object.entries(watch).map(([k, w]) => [k, readAll(pidsOf(w))]));
  const self = process.cpuUsage();
  const t = now();
  return () => {
    const seconds = (now() - t) / 1e9;
    const own = process.cpuUsage(self);
    const processes: Record<string, number> = { loadgen: round((100 * (own.user + own.system)) / 1e6 / seconds) };
    for (const [k, w] of Object.entries(watch)) {
      let used = 0;
      // A process born during the window counts from zero; one that died is lost (rare, small).
      for (const [pid, cpu] of readAll(pidsOf(w))) if (Number.isFinite(cpu)) used += cpu - (before[k]!.get(pid) || 0);
      processes[k] = round((100 * used) / seconds);
    }
    return { cores: coreBusy(cores, cpuTimes()), processes };
  };
}

/**
 * Wakes the sender at each intended send time, LEAD_NS early: a sleep overshoots by ~50 us (timer
 * slack) and the wake-up message takes ~50 us more. A request the sender then finds due within
 * LEAD_NS is sent slightly early, and its latency counts from its actual send time instead.
 */
const LEAD_NS = 100_000;
const PACER = `
const { workerData, parentPort } = require("node:worker_threads");
const cell = new Int32Array(new SharedArrayBuffer(4));
const { t0, intervalNs, total, lead } = workerData;
for (let i = 0; i < total; i++) {
  const waitMs = (t0 + i * intervalNs - lead - Number(process.hrtime.bigint())) / 1e6;
  if (waitMs > 0.02) Atomics.wait(cell, 0, 0, waitMs);
  parentPort.postMessage(i);
}
`;

const SLOW_SECONDS_KEPT = 12;

/** Each second of an open-loop run by its slowest request (request m was due at m / rate s). */
function slowSeconds(latencyUs: Float64Array, rate: number): Pick<LoadResult, "slowSeconds" | "secondsOver100ms"> {
  const perSecond = Math.max(1, Math.round(rate));
  const seconds: NonNullable<LoadResult["slowSeconds"]> = [];
  for (let start = 0; start < latencyUs.length; start += perSecond) {
    const slice = latencyUs.subarray(start, Math.min(latencyUs.length, start + perSecond));
    const p = percentiles(slice);
    let over = 0;
    let unfinished = 0;
    for (const v of slice) {
      if (Number.isNaN(v)) unfinished++;
      else if (v > 100_000) over++;
    }
    seconds.push({ second: start / perSecond, maxMs: round(p.max / 1e3, 1), p99Ms: round(p.p99 / 1e3, 1), over100ms: over, unfinished });
  }
  // A request that never finished (an error or a timeout) is slower than any that did.
  const worst = (x: (typeof seconds)[number]) => (x.unfinished > 0 ? Infinity : Number.isFinite(x.maxMs) ? x.maxMs : -1);
  const secondsOver100ms = seconds.filter((x) => worst(x) > 100).length;
  return { slowSeconds: seconds.sort((a, b) => worst(b) - worst(a) || a.second - b.second).slice(0, SLOW_SECONDS_KEPT), secondsOver100ms };
}

/** Fixed-rate load; latency from the intended send time of each request. */
export async function runOpenLoop(spec: OpenLoopSpec): Promise<LoadResult> {
  const { pool, send, opened } = clientFor(spec.scenario, spec.connections);
  const intervalNs = 1e9 / spec.rate;
  const warm = Math.round((spec.rate * spec.warmupMs) / 1000);
  const measured = Math.round((spec.rate * spec.durationMs) / 1000);
  const total = warm + measured;
  const latency = new Float64Array(measured).fill(NaN);
  const lag = new Float64Array(measured).fill(NaN);
  const errorKinds: Record<string, number> = {};
  let ok = 0;
  let settled = 0;
  let lastDone = 0;
  let next = 0;
  let window: ReturnType<typeof cpuWindow> | null = null;
  let cpu: LoadResult["cpu"] = { cores: {}, processes: {} };
  const t0 = now() + 20e6;
  const pacer = new Worker(PACER, { eval: true, workerData: { t0, intervalNs, total, lead: LEAD_NS } });

  await new Promise<void>((resolve) => {
    const finish = () => {
      clearTimeout(deadline);
      pacer.removeAllListeners("message");
      resolve();
    };
    const deadline = setTimeout(finish, (total * intervalNs) / 1e6 + 20 + STRAGGLER_TIMEOUT_MS);
    const fire = (i: number) => {
      const m = i - warm;
      if (m === 0) window = cpuWindow(spec.watch);
      const sentAt = now();
      // Late: latency counts from the schedule (no coordinated omission); early: from the send.
      const intended = Math.min(t0 + i * intervalNs, sentAt);
      if (m >= 0) lag[m] = (sentAt - (t0 + i * intervalNs)) / 1e3;
      if (i === total - 1 && window) cpu = window();
      const record = (error: string | null) => {
        if (m < 0) return;
        const t = now();
        latency[m] = (t - intended) / 1e3;
        lastDone = Math.max(lastDone, t);
        if (error) errorKinds[error] = (errorKinds[error] ?? 0) + 1;
        else ok++;
        if (++settled === measured) finish();
      };
      send(i).then(
        (status) => record(status === 200 ? null : `status_${status}`),
        (error: unknown) => record(errorKind(error)),
      );
    };
    pacer.on("message", () => {
      const due = Math.min(total, Math.floor((now() + LEAD_NS - t0) / intervalNs) + 1);
      while (next < due) fire(next++);
    });
  });
  await pacer.terminate();
  const unfinished = measured - settled;
  if (unfinished > 0) errorKinds.timeout = (errorKinds.timeout ?? 0) + unfinished;
  await pool.destroy().catch(() => undefined);
  const firstIntended = t0 + warm * intervalNs;
  const span = ((lastDone || now()) - firstIntended) / 1e9;
  return {
    scenario: spec.scenario.name,
    mode: "open",
    rate: spec.rate,
    concurrency: null,
    measuredSeconds: round(span, 2),
    sent: measured,
    ok,
    errors: measured - ok,
    errorKinds,
    achievedRps: round(ok / Math.max(span, spec.durationMs / 1000)),
    latencyUs: percentiles(latency),
    sendLagUs: percentiles(lag),
    ...slowSeconds(latency, spec.rate),
    cpu,
    connectionsPerRequest: round(opened() / Math.max(1, next), 3),
  };
}

/** `concurrency` connections (keep-alive, or one after another), each with one request in flight at all times. */
export async function runClosedLoop(spec: ClosedLoopSpec): Promise<LoadResult> {
  const { pool, send, opened } = clientFor(spec.scenario, spec.concurrency);
  const start = now();
  const windowStart = start + spec.warmupMs * 1e6;
  const end = windowStart + spec.durationMs * 1e6;
  const samples: number[] = [];
  const errorKinds: Record<string, number> = {};
  let ok = 0;
  let sent = 0;
  let i = 0;
  let window: ReturnType<typeof cpuWindow> | null = null;
  const windowTimer = setTimeout(() => (window = cpuWindow(spec.watch)), spec.warmupMs);
  const user = async () => {
    while (now() < end) {
      const t = now();
      let error: string | null = null;
      try {
        const status = await send(i++);
        if (status !== 200) error = `status_${status}`;
      } catch (e) {
        error = errorKind(e);
      }
      const done = now();
      if (t >= windowStart && done <= end) {
        sent++;
        if (error) errorKinds[error] = (errorKinds[error] ?? 0) + 1;
        else {
          ok++;
          samples.push((done - t) / 1e3);
        }
      }
      if (error) await new Promise((r) => setTimeout(r, 1));
    }
  };
  const users = Promise.all(Array.from({ length: spec.concurrency }, user));
  const bound = new Promise((r) => setTimeout(r, spec.warmupMs + spec.durationMs + STRAGGLER_TIMEOUT_MS).unref());
  await Promise.race([users, bound]);
  clearTimeout(windowTimer);
  const cpu = (window as ReturnType<typeof cpuWindow> | null)?.() ?? { cores: {}, processes: {} };
  const connectionsPerRequest = round(opened() / Math.max(1, i), 3);
  await pool.destroy().catch(() => undefined);
  const seconds = spec.durationMs / 1000;
  return {
    scenario: spec.scenario.name,
    mode: "closed",
    rate: null,
    concurrency: spec.concurrency,
    measuredSeconds: seconds,
    sent,
    ok,
    errors: sent - ok,
    errorKinds,
    achievedRps: round(ok / seconds),
    latencyUs: percentiles(samples),
    sendLagUs: null,
    cpu,
    connectionsPerRequest,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  serve({ open: (spec: OpenLoopSpec) => runOpenLoop(spec), closed: (spec: ClosedLoopSpec) => runClosedLoop(spec) }, async () => undefined);
  announce({ pid: process.pid });
}
