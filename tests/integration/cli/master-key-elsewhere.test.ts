import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { runCompiledCli } from "../../support/compiled-cli";
import { freePort } from "../../support/free-port";

/**
 * A command that needs the master key, run against an existing database from a folder without
 * its key (another machine, another working directory: `.data` is relative), generated a new
 * master key there, said "back it up", and then failed because it is not the database's key;
 * every later command from that folder used the useless key. The key is generated only for a
 * database that has none yet.
 */
describe("the CLI without the database's master key", () => {
  let t: TestDatabase;
  let dir: string;
  const bulkhead = (dataDir: string, args: string[]) => runCompiledCli(args, { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: dataDir, ...databaseEnv(t) } });

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-master-elsewhere-"));
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("generates one for a database that has none, and refuses (writing nothing) where the database has one elsewhere", async () => {
    const home = path.join(dir, "home");
    const first = await bulkhead(home, ["keys", "rotate"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`Generated a master key in ${path.join(home, "master.key")} (owner-only); back it up.`);

    const status = await bulkhead(home, ["keys", "status", "--json"]);
    const fingerprint = (JSON.parse(status.stdout) as { master: string }).master;
    expect(fingerprint).toMatch(/^[0-9a-f]{16}$/);

    const elsewhere = path.join(dir, "elsewhere");
    for (const args of [["keys", "rotate"], ["keys", "env", "worker"], ["ca", "cert"]]) {
      const r = await bulkhead(elsewhere, args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr.trim().split("\n"), args.join(" ")).toEqual([
        expect.stringMatching(
          new RegExp(`: There is no master key: BULKHEAD_MASTER_KEY is unset and ${path.join(elsewhere, "master.key").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} does not exist, and this database's secrets are sealed under the master key ${fingerprint}\\. .*Nothing was written\\.$`),
        ),
      ]);
      expect(existsSync(path.join(elsewhere, "master.key"))).toBe(false);
    }
    expect(existsSync(elsewhere) ? readdirSync(elsewhere) : []).not.toContain("master.key");

    const again = await bulkhead(home, ["keys", "rotate"]);
    expect(again.code, again.stderr).toBe(0);
  }, 120_000);

  /**
   * `bulkhead start` with the data folder's master.key gone (deleted, not restored from a backup)
   * generated a new key into its place, said "Back it up", and only then refused it as not the
   * database's key: the file standing where the real key must be restored was a key to nothing.
   */
  it("start refuses before writing a key where the database's secrets are sealed under another", async () => {
    const home = path.join(dir, "home");
    // A command that seals something records the master key's fingerprint in the database.
    const sealed = await bulkhead(home, ["keys", "rotate"]);
    expect(sealed.code, sealed.stderr).toBe(0);
    const status = await bulkhead(home, ["keys", "status", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    const fingerprint = (JSON.parse(status.stdout) as { master: string }).master;
    const lost = path.join(dir, "lost-key");
    const r = await runCompiledCli(["start"], {
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        BULKHEAD_DATA_DIR: lost,
        BULKHEAD_ISOLATION: "off",
        BULKHEAD_APP_PORT: String(await freePort()),
        BULKHEAD_PROXY_PORT: String(await freePort()),
        BULKHEAD_TRANSPARENT_HTTP_PORT: String(await freePort()),
        BULKHEAD_TRANSPARENT_TLS_PORT: String(await freePort()),
        BULKHEAD_WORKER_HEALTH_PORT: String(await freePort()),
        ...databaseEnv(t),
      },
    });
    expect(r.code, r.stderr + r.stdout).not.toBe(0);
    const said = r.stdout + r.stderr;
    expect(said).toContain(`There is no master key: BULKHEAD_MASTER_KEY is unset and ${path.join(lost, "master.key")} does not exist, and this database's secrets are sealed under the master key ${fingerprint}.`);
    expect(said).toContain("Nothing was written.");
    expect(said).not.toContain("Generated a master key");
    expect(existsSync(path.join(lost, "master.key"))).toBe(false);
  }, 180_000);

  /**
   * `audit checkpoint` from a folder without the signer's key created a new signer key there,
   * had its round refused (the folder holds none of the published checkpoints), and then printed
   * "No checkpoint yet: the audit chain is empty." about a chain with signed checkpoints.
   */
  it("audit checkpoint from another folder creates no signer key and does not call a signed chain empty", async () => {
    const home = path.join(dir, "home");
    const signed = await bulkhead(home, ["audit", "checkpoint"]);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout).toMatch(/^Signed checkpoint 1: /);

    const elsewhere = path.join(dir, "elsewhere-audit");
    const r = await bulkhead(elsewhere, ["audit", "checkpoint"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `refusing to sign: there is no signer key in ${path.join(elsewhere, "audit-signer.key")}, and the database holds checkpoints up to number 1; run this where Bulkhead's data folder is (BULKHEAD_DATA_DIR), or point BULKHEAD_AUDIT_SIGNER_KEY_FILE at its key`,
    );
    expect(r.stdout.trim()).toBe(`No checkpoint is published in ${path.join(elsewhere, "audit-checkpoints")}.`);
    expect(existsSync(path.join(elsewhere, "audit-signer.key"))).toBe(false);
    const quiet = await bulkhead(elsewhere, ["audit", "checkpoint", "--no-sign"]);
    expect(quiet.stdout.trim()).toBe(`No checkpoint is published in ${path.join(elsewhere, "audit-checkpoints")}.`);
  }, 120_000);
});
