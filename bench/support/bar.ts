/** The bar of docs BENCHMARKS.md, judged against one run's results. */
import type { BarItem, Results } from "./report";
import { auditLogBarItems } from "./audit-log";
import { approvalBarItem, sandboxBarItems } from "./sidecars";
import { closedRuns, openRuns, ratio } from "./report";
import { median } from "./stats";
import { SOAK_BAR_SECONDS } from "./soak";

type Status = BarItem["status"];
const judge = (ok: boolean): Status => (ok ? "met" : "NOT met");
const r2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "–");
const spread = (v: number[]) => (v.length > 1 ? ` (per repeat ${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})` : "");

interface MicroJson {
  policy?: { rows?: Array<{ name: string; p50_us: number; p99_us: number }> };
  tokens?: { results?: Array<{ name: string; p50_us: number; p99_us: number }> };
}

export function evaluateBar(res: Omit<Results, "bar">): BarItem[] {
  const items: BarItem[] = [];
  const at1k = (p: string) => openRuns(res, p, 1000);
  const hasRuns = (...lists: unknown[][]) => lists.every((l) => l.length > 0);
  const ratioItem = (item: string, bar: string, num: ReturnType<typeof at1k>, den: ReturnType<typeof at1k>, pick: Parameters<typeof ratio>[2], ok: (v: number) => boolean, missing: string) => {
    if (!hasRuns(num, den)) {
      items.push({ item, measured: missing, bar, status: "not measured" });
      return;
    }
    const q = ratio(num, den, pick);
    items.push({ item, measured: `${r2(q.value)}×${spread(q.perRepeat)}`, bar, status: judge(ok(q.value)) });
  };

  const p50 = (r: { latencyUs: { p50: number } }) => r.latencyUs.p50;
  const p99 = (r: { latencyUs: { p99: number } }) => r.latencyUs.p99;
  const rps = (r: { achievedRps: number }) => r.achievedRps;
  ratioItem("1k rps: F p50 / N p50", "≤ 1.3×", at1k("F"), at1k("N"), p50, (v) => v <= 1.3, "not run");
  ratioItem("1k rps: F p50 / G p50", "≤ 1.5×", at1k("F"), at1k("G"), p50, (v) => v <= 1.5, "nginx not available");
  ratioItem("1k rps: F p99 / A p99", "≤ 2×", at1k("F"), at1k("A"), p99, (v) => v <= 2, "not run");
  ratioItem("saturation: F / N throughput (cached token)", "≥ 0.7×", closedRuns(res, "F"), closedRuns(res, "N"), rps, (v) => v >= 0.7, "not run");
  ratioItem("intercepted HTTPS (keep-alive) / F plain HTTP throughput", "≥ 0.5×", closedRuns(res, "H-F"), closedRuns(res, "F"), rps, (v) => v >= 0.5, "not run");
  // BENCHMARKS.md: >= 10x mitmproxy *with keep-alive* (its ~860 rps here is a keep-alive figure);
  // the new-connection-per-request ratio is to be reported beside it, with no bar of its own.
  ratioItem("intercepted HTTPS with keep-alive: Bulkhead / mitmproxy with keep-alive (throughput)", "≥ 10×", closedRuns(res, "H-F"), closedRuns(res, "H-mitm"), rps, (v) => v >= 10, "mitmdump not available");
  const newF = closedRuns(res, "H-F-newconn");
  const newM = closedRuns(res, "H-mitm-newconn");
  const newItem = "intercepted HTTPS, a new connection per request: Bulkhead / mitmproxy likewise (throughput)";
  if (hasRuns(newF, newM)) {
    const q = ratio(newF, newM, rps);
    const med = (runs: typeof newF) => Math.round(median(runs.map(rps)));
    items.push({ item: newItem, measured: `${r2(q.value)}×${spread(q.perRepeat)}; ${med(newF)} against ${med(newM)} rps`, bar: "reported beside keep-alive", status: "reported" });
  } else items.push({ item: newItem, measured: newF.length ? "mitmdump not available" : "not run", bar: "reported beside keep-alive", status: "not measured" });
  items.push(...sandboxBarItems(res.sandbox ?? null));

  const micro = res.micro as MicroJson;
  const decide = micro.policy?.rows?.find((r) => r.name.startsWith("decide, 1000 rules ("));
  items.push(
    decide
      ? { item: "policy decision, 1,000 rules (micro-benchmark)", measured: `p50 ${decide.p50_us} µs, p99 ${decide.p99_us} µs`, bar: "p50 ≤ 10 µs, p99 ≤ 50 µs", status: judge(decide.p50_us <= 10 && decide.p99_us <= 50) }
      : { item: "policy decision, 1,000 rules (micro-benchmark)", measured: "no result", bar: "p50 ≤ 10 µs, p99 ≤ 50 µs", status: "not measured" },
  );
  const cached = micro.tokens?.results?.find((r) => r.name === "cached check() (await)");
  const afterChange = micro.tokens?.results?.find((r) => r.name.startsWith("cached check() after"));
  const coldVerify = micro.tokens?.results?.find((r) => r.name.startsWith("cold"));
  items.push(
    cached
      ? { item: "token check, cached token (micro-benchmark)", measured: `p50 ${cached.p50_us} µs${afterChange ? `; first hit after a revocation change p50 ${afterChange.p50_us} µs` : ""}${coldVerify ? `; cold verify p50 ${coldVerify.p50_us} µs` : ""}`, bar: "p50 ≤ 2 µs", status: judge(cached.p50_us <= 2) }
      : { item: "token check, cached token (micro-benchmark)", measured: "no result", bar: "p50 ≤ 2 µs", status: "not measured" },
  );
  for (const p of res.propagation) {
    const label = p.kind === "policy change" ? "policy change propagation" : "revocation propagation";
    items.push({
      item: `${label} (${p.changes} changes)`,
      measured: `p50 ${r2(p.propagationMs.p50)} ms, p99 ${r2(p.propagationMs.p99)} ms${p.timeouts ? `, ${p.timeouts} timeouts` : ""}${p.flaps ? `, ${p.flaps} flaps` : ""}`,
      bar: "p50 ≤ 20 ms, p99 ≤ 100 ms",
      status: judge(p.propagationMs.p50 <= 20 && p.propagationMs.p99 <= 100 && p.timeouts === 0 && p.flaps === 0),
    });
  }

  if (res.audit) {
    const a = res.audit;
    const lost = a.upstreamHitsViaWorker - a.decisionsAllowed;
    items.push({ item: "audit: zero events lost", measured: `${a.decisionsAllowed} allow decisions for ${a.upstreamHitsViaWorker} forwarded requests, ${a.completed} completions; shipped ${a.drainSeconds} s after the load stopped`, bar: "0 lost", status: judge(lost <= 0 && a.completed >= a.upstreamHitsViaWorker) });
  }
  const lag = res.soak?.flushLagMs;
  items.push(
    lag
      ? { item: "audit flush lag p99", measured: `${r2(lag.p99)} ms`, bar: "≤ 100 ms", status: judge(lag.p99 <= 100), note: `at ~${2 * (res.soak?.rate ?? 0)} events/s (1k rps soak), not at 20k events/s` }
      : { item: "audit flush lag p99", measured: "no samples", bar: "≤ 100 ms", status: "not measured" },
  );
  items.push(...auditLogBarItems(res.auditLog?.result ?? null, res.auditLog?.error ?? null));
  items.push(approvalBarItem(res.approvals ?? null));
  if (res.soak) {
    const s = res.soak;
    const heapPct = (100 * (s.heapEndMiB - s.heapStartMiB)) / s.heapStartMiB;
    items.push({
      item: "worker RSS flat at 1k rps (read as: no growth beyond 10 %)",
      measured:
        `after a full GC, the audit log shipped: RSS ${s.startMiB} → ${s.endMiB} MiB (${s.changePct >= 0 ? "+" : ""}${s.changePct.toFixed(1)} %), V8 heap ${s.heapStartMiB} → ${s.heapEndMiB} MiB (${heapPct >= 0 ? "+" : ""}${heapPct.toFixed(1)} %); raw RSS ${s.rawMinMiB}–${s.rawMaxMiB} MiB` +
        (s.backlogAtEnd ? `; the load left ${s.backlogAtEnd.events} events unshipped (oldest ${s.backlogAtEnd.oldestSeconds} s; shipped in ${s.backlogAtEnd.shippedInSeconds} s), with them in memory RSS ${s.backlogAtEnd.rssMiB} MiB, heap ${s.backlogAtEnd.heapMiB} MiB` : ""),
      bar: "within 10 % over 10 min",
      status: s.collected ? judge(s.changePct <= 10 && heapPct <= 10) : "not measured",
      note: `${s.seconds >= SOAK_BAR_SECONDS ? `${s.seconds} s` : `SHORT run: ${s.seconds} s, not 10 min`}; a fall in RSS (V8 returning pages) is not counted against it`,
    });
  }
  return items;
}
