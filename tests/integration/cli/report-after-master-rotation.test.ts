import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishedAuditKeys } from "@/lib/audit/published-keys";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { runCompiledCli } from "../../support/compiled-cli";

/**
 * The report key derives from the master key. After `bulkhead keys rotate-master`, a report signed
 * before it ("Report NOT VERIFIED: signed by brk_…, which is not among the trusted report keys")
 * could no longer be checked, neither with the keys /.well-known/bulkhead-audit-keys.json
 * publishes nor on the installation's machine, while the rotated checkpoint key is kept
 * (`checkpoint-retired`). The old report key is now kept the same way (`report-retired`).
 */
describe("a report signed before a master key rotation", () => {
  let t: TestDatabase;
  let dir: string;
  let dataDir: string;
  let base: Record<string, string | undefined>;
  const bulkhead = (args: string[], masterKey: string, options: { stdin?: string; env?: Record<string, string | undefined> } = {}) =>
    runCompiledCli(args, { cwd: dir, stdin: options.stdin, timeoutMs: 90_000, env: { ...base, BULKHEAD_MASTER_KEY: masterKey, ...options.env } });

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-report-rotation-"));
    dataDir = path.join(dir, "data");
    base = { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: dataDir, ...databaseEnv(t) };
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("still verifies on the installation's machine and with the published keys elsewhere", async () => {
    const oldKey = generateMasterKey();
    const steps: string[][] = [
      ["user", "create", "--email", "owner@example.com", "--role", "admin"],
      ["agent", "create", "--name", "report-bot"],
    ];
    for (const args of steps) {
      const r = await bulkhead(args, oldKey, { stdin: "a long enough password 1\n" });
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
    }
    const task = await bulkhead(["task", "create", "--agent", "report-bot", "--purpose", "report before rotation", "--scope", "none", "--json"], oldKey);
    expect(task.code, task.stderr).toBe(0);
    const taskId = (JSON.parse(task.stdout) as { id: string }).id;
    const report = await bulkhead(["audit", "report", taskId, "--output", "before.pdf"], oldKey);
    expect(report.code, report.stderr).toBe(0);
    expect((await bulkhead(["audit", "verify-report", "before.pdf"], oldKey)).code).toBe(0);

    const rotated = await bulkhead(["keys", "rotate-master"], oldKey);
    expect(rotated.code, rotated.stderr).toBe(0);
    // BULKHEAD_MASTER_KEY was set: the new key is left in master.key.next for the operator's store.
    const newKey = readFileSync(path.join(dataDir, "master.key.next"), "utf8").trim();

    const here = await bulkhead(["audit", "verify-report", "before.pdf"], newKey);
    expect(here.stdout.trim()).toMatch(new RegExp(`^Report OK: before\\.pdf is the report of task ${taskId} `));
    expect(here.code).toBe(0);

    // What the dashboard (holding the new keys) publishes, checked on a machine without the data folder.
    const dashboardEnv = await bulkhead(["keys", "env", "dashboard", "--json"], newKey);
    expect(dashboardEnv.code, dashboardEnv.stderr).toBe(0);
    const saved = { ...process.env };
    Object.assign(process.env, JSON.parse(dashboardEnv.stdout) as Record<string, string>, { BULKHEAD_DATA_DIR: dataDir });
    let published: ReturnType<typeof publishedAuditKeys>;
    try {
      published = publishedAuditKeys();
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    expect(published.keys.map((k) => k.use)).toEqual(expect.arrayContaining(["report", "report-retired"]));
    writeFileSync(path.join(dir, "keys.json"), JSON.stringify(published));
    const elsewhere = path.join(dir, "elsewhere");
    mkdirSync(elsewhere);
    const offline = await bulkhead(["audit", "verify-report", "before.pdf", "--keys", "keys.json"], "", {
      env: { BULKHEAD_MASTER_KEY: undefined, BULKHEAD_DATA_DIR: elsewhere, DATABASE_URL: undefined, BULKHEAD_DASHBOARD_DATABASE_URL: undefined, BULKHEAD_WORKER_DATABASE_URL: undefined },
    });
    expect(offline.stdout.trim()).toMatch(/^Report OK: before\.pdf /);
    expect(offline.code, offline.stderr).toBe(0);
  }, 240_000);
});
