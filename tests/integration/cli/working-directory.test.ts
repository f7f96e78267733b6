import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "@/lib/package-root";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const BIN = path.resolve("bin/bulkhead.mjs");

/** The real `bulkhead` command (the compiled CLI), run from `cwd` as an operator runs it from their own folder. */
function bulkheadIn(cwd: string, args: string[], env: Record<string, string | undefined>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: env as NodeJS.ProcessEnv, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/**
 * What ships with the code (the migrations every command applies or checks) is found beside the
 * code, not in the working directory: run from an agent's project folder, every command that
 * touched the database failed with "Migrations folder <cwd>/prisma/migrations does not exist".
 */
describe("the CLI run from a folder outside the checkout", () => {
  let t: TestDatabase;
  let elsewhere: string;
  beforeAll(async () => {
    t = await createTestDatabase({ migrate: false });
    elsewhere = mkdtempSync(path.join(tmpdir(), "bh-elsewhere-"));
  });
  afterAll(async () => {
    await t.drop();
    rmSync(elsewhere, { recursive: true, force: true });
  });

  it("migrates and then registers and lists agents with the checkout's migrations", async () => {
    const env = { PATH: process.env.PATH, HOME: elsewhere, BULKHEAD_DATA_DIR: path.join(elsewhere, "data"), ...databaseEnv(t) };
    const migrated = await bulkheadIn(elsewhere, ["db", "migrate"], env);
    expect(migrated.stderr).not.toMatch(/Migrations folder/);
    expect(migrated.code, migrated.stderr).toBe(0);

    const created = await bulkheadIn(elsewhere, ["agent", "create", "--name", "elsewhere-bot", "--owner", "nobody@example.com"], env);
    // No such user: refused by the domain (the database was reached and is migrated), not by a missing folder.
    expect(created.stderr).not.toMatch(/Migrations folder/);
    const listed = await bulkheadIn(elsewhere, ["agent", "list", "--json"], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual(expect.anything());
  }, 120_000);

  it("packageRoot() finds the checkout from this source file and from the compiled CLI's folder", () => {
    const root = path.resolve(".");
    expect(packageRoot()).toBe(root);
    expect(packageRoot(path.join(root, "dist", "cli", "some-build", "main.mjs"))).toBe(root);
    expect(packageRoot(new URL(`file://${path.join(root, "lib", "db", "migrate.ts")}`).href)).toBe(root);
  });
});
