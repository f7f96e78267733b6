import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { runCompiledCli } from "../../support/compiled-cli";

/** What `keys status` and `ca rotate` tell an operator, through the real compiled CLI. */
describe("keys status and ca rotate say what is true of a running Bulkhead", () => {
  let t: TestDatabase;
  let dir: string;
  let env: Record<string, string | undefined>;
  const bulkhead = (args: string[]) => runCompiledCli(args, { cwd: dir, env });

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-keys-ca-"));
    env = { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: path.join(dir, "data"), BULKHEAD_MASTER_KEY: generateMasterKey(), ...databaseEnv(t) };
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * `keys status` printed the master-derived key as "Checkpoint key", which signs nothing any more
   * (it verifies format-1 checkpoints): every checkpoint, `audit key` and the published keys name
   * the signer's own key, so the two ids an operator compared never matched.
   */
  it("keys status names the checkpoint signer's key, the one `audit key` prints, and labels the format-1 key", async () => {
    expect((await bulkhead(["keys", "rotate"])).code).toBe(0); // the first keyed command records the key generation
    const before = await bulkhead(["keys", "status"]);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toMatch(/^Checkpoint signer key: none yet \(.*audit-signer\.key is created on first start\)/m);

    const key = await bulkhead(["audit", "key"]);
    expect(key.code, key.stderr).toBe(0);
    const signerId = key.stdout.trim().split(":")[0]!;
    const status = await bulkhead(["keys", "status"]);
    expect(status.code, status.stderr).toBe(0);
    const line = status.stdout.split("\n").find((l) => l.startsWith("Checkpoint signer key:"));
    expect(line).toMatch(new RegExp(`^Checkpoint signer key: ${signerId}   Format-1 checkpoint key \\(verifies old checkpoints only\\): ack_[0-9a-f]{16}$`));
    expect(line).not.toMatch(new RegExp(`only\\): ${signerId}$`));
    expect(status.stdout).not.toMatch(/(^|\s)Checkpoint key:/);
  }, 120_000);

  /** A running worker loads a rotated CA by itself (tests/integration/proxy/intercept.test.ts); the CLI said to restart it. */
  it("ca rotate does not ask for a restart the worker does not need", async () => {
    expect((await bulkhead(["ca", "cert"])).code).toBe(0);
    const rotated = await bulkhead(["ca", "rotate"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toMatch(/^New interception CA [0-9a-f-]{36} /);
    expect(rotated.stdout).toContain("give agents the new certificate (`bulkhead ca cert`); a running proxy worker signs new tunnels with it at once.");
    expect(rotated.stdout).not.toMatch(/restart/i);
  }, 120_000);
});
