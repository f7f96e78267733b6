import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";

/**
 * `bulkhead task create` without --policy gives the task the empty deny-all policy. That is the
 * safe default, but the command said only "Created task ..., scope none" and exited 0, so a first
 * task made without a policy refused everything its agent asked with nothing to say why.
 */
describe("bulkhead task create without --policy", () => {
  let t: TestDatabase;
  let dir: string;
  let agent: string;
  const cli = (argv: string[]) => runCli(argv, { database: t });

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-task-no-policy-"));
    const admin = await makeUser(t.db, "admin");
    agent = (await t.db.agent.create({ data: { name: unique("nopolicy"), ownerId: admin.user.id } })).name;
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("says that every request will be denied, and how to give a policy", async () => {
    const run = await cli(["task", "create", "--agent", agent, "--purpose", "forgot the policy"]);
    expect(run.code).toBe(0);
    expect(run.stdout[0]).toMatch(/^Created task [0-9a-f-]{36} for .*, scope none, expires /);
    expect(run.stderr).toEqual([
      `No --policy given: the task's policy has no rules ("unlisted: deny"), so every request of ${agent} under it is denied. Give one with --policy FILE (bulkhead policy templates lists starting points), or edit it on the task's page.`,
    ]);
  });

  it("says nothing more with a policy, and --json stays one JSON line", async () => {
    const file = path.join(dir, "read.yaml");
    writeFileSync(file, "unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n");
    const withPolicy = await cli(["task", "create", "--agent", agent, "--purpose", "with a policy", "--policy", file]);
    expect(withPolicy.code).toBe(0);
    expect(withPolicy.stderr).toEqual([]);
    const json = await cli(["task", "create", "--agent", agent, "--purpose", "json please", "--json"]);
    expect(json.stderr).toEqual([]);
    expect(JSON.parse(json.stdout[0]!)).toMatchObject({ agent, scope: "" });
  });
});
