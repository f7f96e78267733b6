/**
 * `npx tsx bench/support/profile-summary.ts <file.cpuprofile> [top] [seconds]`: where a V8 CPU profile's
 * time goes, as self time by function and by origin (a package, Node's internals, the bundle),
 * in percent of the samples, idle excluded. For docs/benchmarks.md; open the file in Chrome
 * DevTools for the call tree. With `seconds`, only the samples of the profile's last `seconds`
 * count (the saturation run at the end of bench/focus.ts, without the worker's start-up).
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
const [file, topArg, secondsArg] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary.ts <file.cpuprofile> [top]");
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
const from = secondsArg ? profile.endTime - Number(secondsArg) * 1e6 : -Infinity;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

function origin(url: string): string {
  if (!url) return "(native/V8)";
  if (url.startsWith("node:")) return url.split("/").slice(0, 2).join("/");
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.includes("/dist/")) return "bulkhead (compiled)";
  return url;
}

const fn = new Map<string, number>();
const org = new Map<string, number>();
let total = 0;
let at = profile.startTime;
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0;
  if (at < from) continue;
  const node = byId.get(profile.samples[i]!)!;
  const name = node.callFrame.functionName || "(anonymous)";
  if (name === "(idle)") continue;
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const key = `${name} [${origin(node.callFrame.url)}]`;
  fn.set(key, (fn.get(key) ?? 0) + dt);
  org.set(origin(node.callFrame.url), (org.get(origin(node.callFrame.url)) ?? 0) + dt);
}
const print = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (of ${(total / 1e6).toFixed(1)} s busy)`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * v) / total).toFixed(1).padStart(6)} %  ${k}`);
};
print("self time by origin", org);
print("self time by function", fn);
