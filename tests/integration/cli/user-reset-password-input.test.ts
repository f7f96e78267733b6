import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticateLocal } from "@/lib/auth/authenticate";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { runCompiledCli } from "../../support/compiled-cli";

/**
 * `user reset-password` with a password that is too short said "input: Use at least 12
 * characters." (`--json`: path "input"), where `user create` names the field: "password: …".
 */
describe("user reset-password refuses a weak password naming the field, and keeps the old one", () => {
  let t: TestDatabase;
  let dir: string;
  const bulkhead = (args: string[], stdin: string) =>
    runCompiledCli(args, { cwd: dir, stdin, env: { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: path.join(dir, "data"), ...databaseEnv(t) } });

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-reset-password-"));
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("names the password, in text and in --json, and changes nothing", async () => {
    const created = await bulkhead(["user", "create", "--email", "someone@example.com", "--role", "auditor", "--json"], "the first long password\n");
    expect(created.code, created.stderr).toBe(0);
    const userId = (JSON.parse(created.stdout) as { id: string }).id;

    const text = await bulkhead(["user", "reset-password", "someone@example.com"], "short\n");
    expect(text.code).toBe(1);
    expect(text.stderr.trim()).toBe("bulkhead user: the password on standard input: Use at least 12 characters.");
    const json = await bulkhead(["user", "reset-password", "someone@example.com", "--json"], "short\n");
    expect(JSON.parse(json.stderr).error.issues).toEqual([{ path: "password", message: "Use at least 12 characters." }]);

    expect(await authenticateLocal(t.db, "someone@example.com", "the first long password")).toBe(userId);
  }, 120_000);
});
