import { spawn, spawnSync } from "node:child_process";
import { closeSync, openSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { bulkProxyDecisions } from "../../support/audit-events";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";

/**
 * A CLI command whose standard output takes no write: redirected to a full disk (/dev/full answers
 * every write with ENOSPC). `bulkhead ca cert > ca.pem` or `bulkhead token mint ... > token` exited
 * 0 over an empty file, so a script went on with nothing. The command fails now and says why; an
 * export says how far it got. (A reader that goes away, `| head`, is its own choice: see
 * closed-output.test.ts.)
 */
function runToFullDisk(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; stderr: string }> {
  const full = openSync("/dev/full", "w");
  const child = spawn(process.execPath, ["bin/bulkhead.mjs", ...args], { env: env as NodeJS.ProcessEnv, stdio: ["ignore", full, "pipe"] });
  closeSync(full);
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stderr })));
}

describe("a CLI command whose standard output is on a full disk", () => {
  let dir = "";
  let t: TestDatabase;
  let env: Record<string, string | undefined> = {};
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-full-out-"));
    t = await createTestDatabase();
    const client = new pg.Client({ connectionString: t.workerUrl });
    await client.connect();
    try {
      await bulkProxyDecisions(client, { agents: [{ id: "0f8fad5b-d9cb-469f-a165-70867728950e", name: "a" }], tasks: [{ id: "7c9e6679-7425-40de-944b-e07fc1f90ae7", agentId: "0f8fad5b-d9cb-469f-a165-70867728950e" }] }, 500);
    } finally {
      await client.end();
    }
    env = { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: path.join(dir, "data"), BULKHEAD_MASTER_KEY: generateMasterKey(), ...databaseEnv(t) };
  }, 120_000);
  afterAll(async () => {
    await t?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const LOST = "standard output could not be written: no space left on device (ENOSPC); what the command printed is incomplete";

  it.each([
    [["--version"], `bulkhead: ${LOST}`],
    [["policy", "schema"], `bulkhead policy: ${LOST}`],
    [["agent", "list"], `bulkhead agent: ${LOST}`],
    [["ca", "cert"], `bulkhead ca: ${LOST}`],
  ])("%j fails and says why", async (args, line) => {
    const r = await runToFullDisk(args, env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim().split("\n").at(-1)).toBe(line);
  }, 120_000);

  it("--json: the failure is a JSON error object", async () => {
    const r = await runToFullDisk(["agent", "list", "--json"], env);
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stderr.trim().split("\n").at(-1)!)).toEqual({ error: { code: "failed", message: LOST, exitCode: 1 } });
  }, 120_000);

  it("an audit export says how far it got and that it is incomplete", async () => {
    const r = await runToFullDisk(["audit", "export"], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^bulkhead audit: standard output could not be written after \d+ bytes: no space left on device \(ENOSPC\); the export is incomplete$/m);
    expect(r.stderr).not.toMatch(/^Exported the audit log/m);
  }, 120_000);

  it("an export to an --output that cannot be written names the file and the reason; a device is left alone", async () => {
    const r = await runToFullDisk(["audit", "export", "--output", "/dev/full"], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^bulkhead audit: could not write --output \/dev\/full \(after \d+ bytes of the export\): no space left on device \(ENOSPC\)$/m);
    expect(statSync("/dev/full").isCharacterDevice()).toBe(true);
  }, 120_000);

  it("an export to a file on a full filesystem is removed, not left to pass for a whole one", () => {
    // A filesystem of its own, full, in a mount namespace of its own (nothing is mounted here).
    const folder = path.join(dir, "small");
    const file = path.join(folder, "export.jsonl");
    const script = [`mkdir -p '${folder}'`, `mount -t tmpfs -o size=64k tmpfs '${folder}'`, `dd if=/dev/zero of='${folder}/fill' bs=1k count=64 2>/dev/null`, `"$0" bin/bulkhead.mjs audit export --format jsonl --output '${file}'; echo "rc=$?"`, `ls '${folder}'`].join("; ");
    const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", script, process.execPath], { env: env as NodeJS.ProcessEnv, encoding: "utf8", timeout: 120_000 });
    expect(r.stdout, r.stderr).toContain("rc=1");
    expect(r.stderr).toMatch(/^bulkhead audit: could not write --output \S+export\.jsonl \(after \d+ bytes of the export\): no space left on device \(ENOSPC\); the incomplete file was removed$/m);
    expect(r.stdout.split("\n")).not.toContain("export.jsonl");
  }, 120_000);

  it("a report on a full filesystem: the PDF and its signature are removed, the reason said", async () => {
    const cli = (args: string[], input?: string) => spawnSync(process.execPath, ["bin/bulkhead.mjs", ...args], { env: env as NodeJS.ProcessEnv, encoding: "utf8", input, timeout: 120_000 });
    for (const [args, input] of [[["user", "create", "--email", "owner@example.com", "--role", "admin"], "a long enough password 1\n"], [["agent", "create", "--name", "report-bot"], undefined]] as const) {
      const step = cli([...args], input);
      expect(step.status, step.stderr).toBe(0);
    }
    const task = cli(["task", "create", "--agent", "report-bot", "--purpose", "a report on a full disk", "--scope", "none", "--json"]);
    expect(task.status, task.stderr).toBe(0);
    const taskId = (JSON.parse(task.stdout) as { id: string }).id;
    const folder = path.join(dir, "small-report");
    const file = path.join(folder, "report.pdf");
    const script = [`mkdir -p '${folder}'`, `mount -t tmpfs -o size=64k tmpfs '${folder}'`, `dd if=/dev/zero of='${folder}/fill' bs=1k count=64 2>/dev/null`, `"$0" bin/bulkhead.mjs audit report ${taskId} --output '${file}'; echo "rc=$?"`, `ls '${folder}'`].join("; ");
    const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", script, process.execPath], { env: env as NodeJS.ProcessEnv, encoding: "utf8", timeout: 120_000 });
    expect(r.stdout, r.stderr).toContain("rc=1");
    expect(r.stderr).toMatch(/^bulkhead audit: could not write the report \S+report\.pdf: no space left on device \(ENOSPC\); the incomplete file was removed$/m);
    expect(r.stdout.split("\n").filter((n) => n.startsWith("report"))).toEqual([]);
  }, 180_000);

  it("a command's own failure keeps its exit code and message", async () => {
    const r = await runToFullDisk(["token", "mint", "--task", "00000000-0000-4000-8000-000000000000"], env);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).not.toContain(LOST);
  }, 120_000);
});
