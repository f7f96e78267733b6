/**
 * Policy benchmark (not a test): `npx tsx bench/policy-bench.ts`.
 * Measures `decide` at 10, 100 and 1,000 rules and the classification of typical REST, GraphQL
 * and SQL requests; prints a table and writes bench/results/policy.json.
 * Each sample times one call with process.hrtime.bigint() after a warm-up, so the numbers
 * include ~30-100 ns of timer overhead.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decide } from "@/lib/policy/decide";
import { normalizePolicy, policySchema, type PolicyInput } from "@/lib/policy/schema";
import { compilePolicy } from "@/lib/policy/compiled";
import { canonicalizeRequest } from "@/lib/semantics/canonical";
import { classify } from "@/lib/semantics/classify";
import { exampleSqlHttp } from "@/lib/semantics/descriptors/examples";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import { loadSqlParser } from "@/lib/semantics/sql";
import { EFFECTS, type Effect, type SemanticAction } from "@/lib/semantics/types";

interface Row {
  name: string;
  iterations: number;
  p50_us: number;
  p99_us: number;
  mean_us: number;
}

function measure(name: string, iterations: number, fn: () => unknown): Row {
  const warmup = Math.min(20_000, iterations);
  for (let i = 0; i < warmup; i++) fn();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    fn();
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  samples.sort();
  const at = (q: number) => samples[Math.min(iterations - 1, Math.floor(q * iterations))] ?? 0;
  const mean = samples.reduce((a, b) => a + b, 0) / iterations;
  const round = (v: number) => Math.round(v * 100) / 100;
  return { name, iterations, p50_us: round(at(0.5)), p99_us: round(at(0.99)), mean_us: round(mean) };
}

const SERVICES = ["railway", "github", "pg-http", ...Array.from({ length: 17 }, (_, i) => `svc-${i}`)];
const ENVS = ["production", "staging", "dev"];

/** A policy with `n` rules spread over 20 services, mixing exact and glob operations. */
function policyOf(n: number, options: { oneService?: boolean } = {}): PolicyInput {
  const rules = Array.from({ length: n }, (_, i) => {
    const service = options.oneService ? "railway" : (SERVICES[i % SERVICES.length] as string);
    const glob = options.oneService || i % 3 === 0;
    return {
      id: `r${i}`,
      service,
      environments: [ENVS[i % ENVS.length] as string],
      resources: i % 4 === 0 ? undefined : [`res-${i % 50}*`],
      operations: glob ? [`op${i % 40}*`] : [`op${i % 40}`, `op${(i + 7) % 40}`],
      effects: [EFFECTS[i % 4] as Effect, EFFECTS[(i + 1) % 4] as Effect],
      decision: i % 17 === 0 ? ("deny" as const) : i % 11 === 0 ? ("hold" as const) : ("allow" as const),
      waive_approval: i % 5 === 0,
    };
  });
  return { mode: "enforce", unlisted: "deny", rules };
}

function actionsFor(oneService = false): SemanticAction[][] {
  const out: SemanticAction[][] = [];
  for (let i = 0; i < 64; i++) {
    out.push([
      {
        service: oneService ? "railway" : (SERVICES[i % SERVICES.length] as string),
        environment: ENVS[i % ENVS.length] as string,
        resource: `res-${i % 50}-x`,
        operation: `op${i % 40}`,
        effect: EFFECTS[i % 4] ?? "read",
      },
    ]);
  }
  return out;
}

async function main(): Promise<void> {
  await loadSqlParser();
  const rows: Row[] = [];
  const now = Date.now();
  const actionSets = actionsFor();

  const mix = (snapshot: ReturnType<typeof compilePolicy>, sets: SemanticAction[][]) => {
    const counts: Record<string, number> = { allow: 0, hold: 0, deny: 0 };
    for (const set of sets) {
      const verdict = decide(snapshot, set, now).decision;
      counts[verdict] = (counts[verdict] ?? 0) + 1;
    }
    return `allow ${counts["allow"]}/hold ${counts["hold"]}/deny ${counts["deny"]}`;
  };
  for (const n of [10, 100, 1000]) {
    const snapshot = compilePolicy(normalizePolicy(policySchema.parse(policyOf(n))));
    let k = 0;
    rows.push(measure(`decide, ${n} rules (${mix(snapshot, actionSets)} of 64)`, 200_000, () => decide(snapshot, actionSets[k++ & 63] ?? [], now)));
  }
  // Every rule on the action's service, every operation a glob: no index can narrow the scan.
  const worst = compilePolicy(normalizePolicy(policySchema.parse(policyOf(1000, { oneService: true }))));
  const railwaySets = actionsFor(true);
  let w = 0;
  rows.push(
    measure(`decide, 1000 glob rules on one service (${mix(worst, railwaySets)} of 64)`, 100_000, () => decide(worst, railwaySets[w++ & 63] ?? [], now)),
  );

  const registry = registryWith([exampleSqlHttp]);
  const inventory = createInventory([{ environment: "production", resources: ["vol_123"] }, { environment: "staging", hosts: ["*.staging.example.com"] }]);
  const json = { "content-type": "application/json" };
  const requests = {
    "classify REST (GitHub DELETE /repos/{o}/{r})": { method: "DELETE", url: "https://api.github.com/repos/acme/app", headers: {}, body: null },
    "classify GraphQL (Railway mutation + variables)": {
      method: "POST",
      url: "https://backboard.railway.com/graphql/v2",
      headers: json,
      body: JSON.stringify({
        query: "mutation VolumeDelete($id: String!) { volumeDelete(volumeId: $id) ...F } fragment F on Mutation { variableUpsert(input: { projectId: \"p\", environmentId: \"e\", name: \"A\", value: \"1\" }) }",
        variables: { id: "vol_123" },
        operationName: "VolumeDelete",
      }),
    },
    "classify SQL over HTTP (3 statements, CTE, join)": {
      method: "POST",
      url: "https://sql.example.com/sql",
      headers: json,
      body: JSON.stringify({
        query: "WITH recent AS (SELECT id FROM orders WHERE created_at > now() - interval '1 day') SELECT o.*, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id IN (SELECT id FROM recent); UPDATE orders SET seen = true WHERE id = 42; DELETE FROM sessions WHERE expires_at < now()",
        database: "app",
      }),
    },
  };
  for (const [name, raw] of Object.entries(requests)) {
    rows.push(
      measure(name, 20_000, () => {
        const c = canonicalizeRequest(raw);
        if (!c.ok) throw new Error(c.reason);
        return classify(c.request, registry, inventory);
      }),
    );
  }

  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`${"benchmark".padEnd(width)}  ${"p50 µs".padStart(9)}  ${"p99 µs".padStart(9)}  ${"mean µs".padStart(9)}  iterations`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(width)}  ${r.p50_us.toFixed(2).padStart(9)}  ${r.p99_us.toFixed(2).padStart(9)}  ${r.mean_us.toFixed(2).padStart(9)}  ${r.iterations}`);
  }
  const decide1000 = rows.find((r) => r.name.startsWith("decide, 1000 rules ("));
  const pass = decide1000 !== undefined && decide1000.p50_us <= 10 && decide1000.p99_us <= 50;
  console.log(`\nbar (decide at 1,000 rules: p50 <= 10 µs, p99 <= 50 µs): ${pass ? "met" : "NOT met"}`);

  const out = join(dirname(fileURLToPath(import.meta.url)), "results", "policy.json");
  mkdirSync(dirname(out), { recursive: true });
  const result = { node: process.version, platform: `${process.platform}-${process.arch}`, date: new Date().toISOString(), bar: { met: pass }, rows };
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
