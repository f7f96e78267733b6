import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";

/**
 * A flag given an empty value (`--policy "$POLICY"` with the variable unset) is refused: commands
 * took it for a flag not given, so `task create --policy ""` made a task with the deny-all policy
 * and `audit export --output ""` wrote the export to standard output, both exiting 0.
 */
describe("a flag given an empty value", () => {
  let t: TestDatabase;
  let agentId: string;
  let owner: string;
  const cli = (argv: string[], stdin?: string) => runCli(argv, { database: t, stdin });

  beforeAll(async () => {
    t = await createTestDatabase();
    const admin = await makeUser(t.db, "admin");
    owner = admin.email;
    agentId = (await t.db.agent.create({ data: { name: unique("empty"), ownerId: admin.user.id } })).id;
  });
  afterAll(() => t.drop());

  it("is refused naming the flag, and nothing is created", async () => {
    const cases: Array<[string, string, string[]]> = [
      ["--policy", "", ["--agent", agentId]],
      ["--ttl", "", ["--agent", agentId]],
      ["--ttl", "  ", ["--agent", agentId]],
      ["--agent", " ", []],
    ];
    for (const [flag, value, rest] of cases) {
      const run = await cli(["task", "create", ...rest, "--purpose", "empty flags", flag, value]);
      expect(run, `${flag} "${value}"`).toMatchObject({ code: 2, stdout: [] });
      expect(run.stderr).toEqual([`bulkhead task: ${flag} is empty: give it a value, or leave the flag out`]);
    }
    expect(await t.db.task.count({ where: { agentId } })).toBe(0);
  });

  it("audit export --output \"\" writes nothing anywhere", async () => {
    const run = await cli(["audit", "export", "--output", ""]);
    expect(run).toMatchObject({ code: 2, stdout: [], stderr: ["bulkhead audit: --output is empty: give it a value, or leave the flag out"] });
  });

  it("free text and searches may be empty, and --scope keeps its own advice", async () => {
    const name = unique("described");
    expect((await cli(["agent", "create", "--name", name, "--owner", owner, "--description", ""])).code).toBe(0);
    expect((await cli(["agent", "list", "--query", ""])).code).toBe(0);
    const scope = await cli(["task", "create", "--agent", agentId, "--purpose", "empty scope", "--scope", ""]);
    expect(scope.stderr).toEqual(['bulkhead task: --scope is empty: give entries such as railway:staging:read, or "none"']);
  });
});
