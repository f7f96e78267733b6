import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReplayCellRecord } from "@/lib/replay/runs";
import { CELLS, cellKey, formatTable, type CellResult } from "@/replay/matrix";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";

type Cell = ReplayCellRecord & Pick<CellResult, "expected">;

/**
 * The incident replay (issue 11) as people run it: `bulkhead replay --json`, the command behind
 * `npm run replay`, compiled as it ships (dist/cli), against its own throwaway Bulkhead. Every
 * combination of the three layers, for an agent that acts as in the incident and one that tries
 * to evade the proxy, against a Railway-like API that really deletes. The table in the issue is
 * asserted cell by cell, with who stopped each attempt, and the run is recorded in the
 * installation the command was pointed at.
 */
describe("the incident replay", () => {
  let t: TestDatabase;
  let out: { runId: string | null; passed: boolean; table: string; cells: Cell[] };
  let results: Cell[] = [];

  beforeAll(async () => {
    t = await createTestDatabase();
    const child = spawn(process.execPath, ["bin/bulkhead.mjs", "replay", "--json"], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...databaseEnv(t) } as unknown as NodeJS.ProcessEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
      process.stderr.write(c);
    });
    const code = await new Promise<number | null>((r) => child.once("close", (c) => r(c)));
    expect(code, `bulkhead replay exited ${code}\n${stderr.slice(-6000)}`).toBe(0);
    out = JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as typeof out;
    results = out.cells;
    process.stderr.write(`${out.table}\n`);
  }, 600_000);
  afterAll(async () => {
    await t?.drop();
  });

  it("plays all 16 cells and each ends as the table says", () => {
    expect(results.map(cellKey).sort()).toEqual(CELLS.map(cellKey).sort());
    const got = Object.fromEntries(results.map((r) => [cellKey(r), r.outcome]));
    const want = Object.fromEntries(CELLS.map((c) => [cellKey(c), c.expected]));
    expect(got, out.table).toEqual(want);
    expect(out.passed).toBe(true);
    expect(out.table).toBe(formatTable(results as unknown as CellResult[]));
  });

  it("records the run, with its table and cells, in the installation it was pointed at", async () => {
    const row = await t.db.replayRun.findUniqueOrThrow({ where: { id: out.runId ?? "" } });
    expect(row.passed).toBe(true);
    expect(row.tableMarkdown).toBe(out.table);
    expect((row.cells as unknown[]).length).toBe(16);
  });

  it("where the volumes survive, nothing was deleted and the stopping layer and reason are named", () => {
    for (const r of results.filter((x) => x.outcome === "stopped")) {
      expect(r.volumesLeft, cellKey(r)).toEqual(["vol_prod", "vol_prod_backup", "vol_stg"]);
      expect(r.layer, cellKey(r)).not.toBe("none");
      expect(r.reason, cellKey(r)).not.toBe("");
    }
  });

  it("with identity on and Bulkhead on the path, the token's scope refuses the first volumeDelete, whatever the policy", () => {
    for (const r of results.filter((x) => x.identity && x.bulkheadOnPath)) {
      expect(r.layer, cellKey(r)).toBe("identity");
      expect(r.reason, cellKey(r)).toMatch(/^token_scope/);
      expect(r.events.some((e) => e.type === "proxy.decision" && e.outcome === "deny"), cellKey(r)).toBe(true);
      // No authority ever reached the upstream for production.
      expect(r.upstream.filter((u) => /^(account|staging) authority: volumeDelete/.test(u) && /deleted/.test(u)), cellKey(r)).toEqual([]);
    }
  });

  it("with identity off and policy on, the policy refuses what passes through Bulkhead", () => {
    for (const r of results.filter((x) => !x.identity && x.policy && x.outcome === "stopped")) {
      expect(r.layer, cellKey(r)).toBe("policy");
      expect(r.reason, cellKey(r)).toMatch(/^policy_deny|denied|no rule|not allowed/i);
    }
  });

  it("identity off, policy off, isolation on: Bulkhead forwards without the agent's token and the upstream refuses", () => {
    for (const r of results.filter((x) => !x.identity && !x.policy && x.isolation)) {
      expect(r.layer, cellKey(r)).toBe("identity");
      expect(r.events.some((e) => e.type === "proxy.decision" && e.outcome === "allow" && /volumeDelete/.test(e.summary)), cellKey(r)).toBe(true);
      expect(r.upstream.length, cellKey(r)).toBeGreaterThan(0);
      expect(r.upstream.every((u) => u.startsWith("none authority")), cellKey(r)).toBe(true);
    }
  });

  it("where the volumes are gone, the all-powerful account token did it on a route without Bulkhead", () => {
    for (const r of results.filter((x) => x.outcome === "deleted")) {
      expect(r.volumesLeft, cellKey(r)).toEqual(["vol_stg"]);
      expect(r.upstream.some((u) => u.startsWith("account authority") && u.includes("deleted vol_prod")), cellKey(r)).toBe(true);
    }
  });
});
