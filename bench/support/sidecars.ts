/**
 * The bar items the proxy suite's own environment cannot measure, run as child processes after
 * it (the proxy environment stays up but idle), their JSON read back for the bar and a table each:
 *
 *   - the approval round trip (bench/approvals.bench-run.ts, under Vitest's `bench` project for
 *     the integration harness's embedded PostgreSQL): approve -> the held request forwarded;
 *   - layer 3 (bench/sandbox-bench.ts): the same requests through a sandbox's transparent path and
 *     through the explicit path, in network namespaces of its own; it needs root, `ip` and `nft`,
 *     and is reported as not measured without them.
 */
import path from "node:path";
import type { BarItem } from "./report";
import { runJsonChild, which } from "./children";

/** bench/results/approvals.json as bench/approvals.bench-run.ts writes it. */
export interface ApprovalsResult {
  at: string;
  holds: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  decideP50Ms: number;
  targetP50Ms: number;
}

interface Percentiles {
  p50: number;
  p99: number;
}

/** bench/results/sandbox.json as bench/sandbox-bench.ts writes it. */
export interface SandboxResult {
  requests: number;
  fresh: number;
  repeats: number;
  rows: Array<{ measure: "keepAlive" | "openLoop" | "newConnection"; explicit: Percentiles; transparent: Percentiles; ratioP50: number; ratioP99: number }>;
}

export interface Sidecar<T> {
  result: T | null;
  error: string | null;
}

export function runApprovalsBench(root: string, timeoutMs = 10 * 60_000): Promise<Sidecar<ApprovalsResult>> {
  const vitest = path.join(root, "node_modules", "vitest", "vitest.mjs");
  return runJsonChild<ApprovalsResult>(root, "approvals", [process.execPath, vitest, "run", "--project", "bench", "--silent=false", "bench/approvals.bench-run.ts"], "approvals.json", { timeoutMs });
}

/** Why layer 3's bench cannot run here, or null. */
export function sandboxUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "not run: layer 3's bench needs root (it makes network namespaces)";
  for (const tool of ["ip", "nft"]) if (!which(tool)) return `not run: \`${tool}\` is not installed`;
  return null;
}

export function runSandboxBench(root: string, repeats: number, timeoutMs = 15 * 60_000): Promise<Sidecar<SandboxResult>> {
  const why = sandboxUnavailable();
  if (why) return Promise.resolve({ result: null, error: why });
  return runJsonChild<SandboxResult>(root, "sandbox", [process.execPath, "--import", "tsx", "bench/sandbox-bench.ts"], "sandbox.json", { timeoutMs, env: { BENCH_REPEATS: String(repeats) } });
}

const judge = (ok: boolean): BarItem["status"] => (ok ? "met" : "NOT met");

export function approvalBarItem(a: Sidecar<ApprovalsResult> | null): BarItem {
  const item = "approval round trip (approve → forwarded)";
  const bar = "p50 ≤ 100 ms";
  if (!a?.result) return { item, measured: a?.error ?? "not run (BENCH_SIDECARS=0)", bar, status: "not measured" };
  const r = a.result;
  return { item, measured: `p50 ${r.p50Ms} ms, p90 ${r.p90Ms} ms, p99 ${r.p99Ms} ms over ${r.holds} holds (of which the approver's decision p50 ${r.decideP50Ms} ms)`, bar, status: judge(r.p50Ms <= 100) };
}

export function sandboxBarItems(s: Sidecar<SandboxResult> | null): BarItem[] {
  const item = "sandbox transparent path at 1k rps: p50 / explicit path p50";
  const bar = "≤ 1.1×";
  if (!s?.result) return [{ item, measured: s?.error ?? "not run (BENCH_SIDECARS=0)", bar, status: "not measured" }];
  const row = (m: SandboxResult["rows"][number]["measure"]) => s.result!.rows.find((r) => r.measure === m);
  const describe = (r: SandboxResult["rows"][number]) => `${r.ratioP50.toFixed(2)}× (p50 ${ms(r.transparent.p50)} against ${ms(r.explicit.p50)} ms; p99 ${r.ratioP99.toFixed(2)}×)`;
  const open = row("openLoop");
  const keep = row("keepAlive");
  const fresh = row("newConnection");
  const items: BarItem[] = [];
  // Results written before the open loop existed have only the sequential measure: not the bar's.
  if (open) items.push({ item, measured: describe(open), bar, status: judge(open.ratioP50 <= 1.1), note: `open loop over 32 keep-alive connections, latency from the intended send time, median of ${s.result.repeats} interleaved repeats` });
  else items.push({ item, measured: "no open-loop measure in this result", bar, status: "not measured" });
  if (keep) items.push({ item: "sandbox transparent path, sequential keep-alive requests: p50 / explicit", measured: describe(keep), bar: "reported", status: "reported" });
  if (fresh) items.push({ item: "sandbox transparent path, a new connection (TCP + TLS interception) per request: p50 / explicit", measured: describe(fresh), bar: "reported", status: "reported" });
  return items;
}

const ms = (us: number) => (us / 1000).toFixed(2);
const SANDBOX_MEASURES = { keepAlive: "keep-alive HTTP, sequential", openLoop: "keep-alive HTTP, open loop at 1,000 rps (32 connections)", newConnection: "new TCP + TLS (interception) + request" };

export function renderSidecars(approvals: Sidecar<ApprovalsResult> | null, sandbox: Sidecar<SandboxResult> | null): string {
  const out: string[] = [];
  if (approvals?.result) {
    const r = approvals.result;
    out.push("\n#### Approval round trip (bench/approvals.bench-run.ts, a child process after the proxy parts, its own embedded PostgreSQL, unpinned)\n");
    out.push("| approval round trip | holds | p50 ms | p90 ms | p99 ms | max ms | of which the decision (p50) |");
    out.push("| --- | --- | --- | --- | --- | --- | --- |");
    out.push(`| approve → upstream | ${r.holds} | ${r.p50Ms} | ${r.p90Ms} | ${r.p99Ms} | ${r.maxMs} | ${r.decideP50Ms} |`);
  }
  if (approvals?.error) out.push(`\nApproval round trip problems: ${approvals.error}`);
  if (sandbox?.result) {
    const s = sandbox.result;
    out.push(`\n#### Layer 3: a sandbox's transparent path beside the explicit path (bench/sandbox-bench.ts, namespaces of its own, unpinned; ${s.requests} sequential keep-alive requests, 3 s at 1,000 rps and ${s.fresh} new connections per path and repeat, median of ${s.repeats})\n`);
    out.push("| measure (ms) | explicit p50 | sandbox p50 | ratio p50 | explicit p99 | sandbox p99 | ratio p99 |");
    out.push("| --- | --- | --- | --- | --- | --- | --- |");
    for (const r of s.rows) {
      out.push(`| ${SANDBOX_MEASURES[r.measure]} | ${ms(r.explicit.p50)} | ${ms(r.transparent.p50)} | ${r.ratioP50.toFixed(2)}× | ${ms(r.explicit.p99)} | ${ms(r.transparent.p99)} | ${r.ratioP99.toFixed(2)}× |`);
    }
  }
  if (sandbox?.error) out.push(`\nLayer 3 bench: ${sandbox.error}`);
  return out.join("\n");
}
