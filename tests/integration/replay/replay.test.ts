import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { workerKeyEnvironment } from "@/lib/keys/process-keys";
import { ensureCertificateAuthority } from "@/lib/tls/ca-store";
import { CELLS, cellKey, formatTable, type CellResult } from "@/replay/matrix";
import { runReplay } from "@/replay/run";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { establishTestKeys, type TestKeys } from "../../support/keys";
import { identity } from "../../support/proxy-harness";

/**
 * The incident replay (issue 11): every combination of the three layers, for an agent that acts
 * as in the incident and one that tries to evade the proxy, against a Railway-like API that really
 * deletes. The table in the issue is asserted cell by cell, with who stopped each attempt.
 */
describe("the incident replay", () => {
  let t: TestDatabase;
  let keys: TestKeys;
  let admin: Actor;
  let ownerId: string;
  let results: CellResult[] = [];

  beforeAll(async () => {
    t = await createTestDatabase();
    keys = await establishTestKeys(t.db);
    await ensureCertificateAuthority(t.db, keys.workerKey);
    const made = await makeUser(t.db, "admin");
    admin = made.actor;
    ownerId = made.user.id;
    results = await runReplay(
      { db: t.db, admin, ownerId, urls: { owner: t.ownerUrl, dashboard: t.url, worker: t.workerUrl }, workerKey: keys.workerKey, dashboardKey: keys.dashboardKey, identity, workerKeyEnv: workerKeyEnvironment(keys) },
      { log: (line) => process.stderr.write(`${line}\n`) },
    );
    process.stderr.write(`${formatTable(results)}\n`);
  }, 900_000);
  afterAll(async () => {
    await t?.drop();
  });

  it("plays all 16 cells and each ends as the table says", () => {
    expect(results.map(cellKey).sort()).toEqual(CELLS.map(cellKey).sort());
    const got = Object.fromEntries(results.map((r) => [cellKey(r), r.outcome]));
    const want = Object.fromEntries(CELLS.map((c) => [cellKey(c), c.expected]));
    expect(got, formatTable(results)).toEqual(want);
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
