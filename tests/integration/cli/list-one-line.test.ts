import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";

/**
 * `task list` prints one task per line. A purpose with a line feed (the API and the dashboard
 * take one) printed a second line that reads as another task: here one that seems to hold
 * production writes.
 */
describe("task list keeps each task on its line", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("shows a purpose's line feeds and tabs as escapes", async () => {
    const admin = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: unique("lines"), ownerId: admin.user.id } });
    const forged = `check staging\n00000000-0000-4000-8000-000000000000  active   ${agent.name}  [railway:production:write]  \tdeploy`;
    await t.db.task.create({ data: { agentId: agent.id, purpose: forged, policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 600_000) } });
    const run = await runCli(["task", "list"], { database: t });
    expect(run.code).toBe(0);
    const lines = run.stdout.flatMap((l) => l.split("\n"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/\[none\]  check staging\\u000a00000000-0000-4000-8000-000000000000  active   .*\[railway:production:write\]  \\u0009deploy$/);
    // --json keeps the value as it is.
    const json = await runCli(["task", "list", "--json"], { database: t });
    expect(JSON.parse(json.stdout[0]!)[0].purpose).toBe(forged);
  });
});
