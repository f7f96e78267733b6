/**
 * `npx tsx bench/support/allocation-summary.ts <file.heapprofile> [rows]`: where a worker's
 * allocations come from (bench/support/allocations.ts), by allocating function and by origin
 * (Bulkhead's own code, a dependency, Node), in bytes and share of all sampled bytes.
 */
import { readFileSync } from "node:fs";

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}

const [file, rowsArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: allocation-summary.ts <file.heapprofile> [rows]");
  process.exit(2);
}
const rows = Number(rowsArg ?? 40);
const { head } = JSON.parse(readFileSync(file, "utf8")) as { head: Node };
const byFunction = new Map<string, number>();
const byOrigin = new Map<string, number>();
let total = 0;

function origin(url: string): string {
  if (!url) return "(native/V8)";
  if (url.startsWith("node:")) return url;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  return "bulkhead";
}

function walk(n: Node, parentName: string): void {
  const f = n.callFrame;
  const name = `${f.functionName || "(anonymous)"} [${origin(f.url)}${f.url && !f.url.startsWith("node:") ? `:${f.lineNumber + 1}` : ""}]${f.functionName ? "" : ` < ${parentName}`}`;
  if (n.selfSize > 0) {
    total += n.selfSize;
    byFunction.set(name, (byFunction.get(name) ?? 0) + n.selfSize);
    byOrigin.set(origin(f.url), (byOrigin.get(origin(f.url)) ?? 0) + n.selfSize);
  }
  for (const c of n.children) walk(c, f.functionName || parentName);
}
walk(head, "(root)");

const show = (title: string, m: Map<string, number>, limit: number) => {
  console.log(`\n${title} (of ${(total / 2 ** 20).toFixed(1)} MiB sampled)`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, limit)) console.log(`${((100 * v) / total).toFixed(1).padStart(6)} %  ${k}`);
};
show("allocated by origin", byOrigin, 20);
show("allocated by function", byFunction, rows);
